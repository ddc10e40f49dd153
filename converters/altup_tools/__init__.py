"""altup.cpp's Python tools: the AltUp reference model (PyTorch), the corpus and tokenizer
preparation, the trainer, and the converter from checkpoints to GGUF."""
