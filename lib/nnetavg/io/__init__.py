"""Kaldi file formats: basic binary/text objects, tables (ark/scp), nnet1 model files."""
