"""Speech: lang dirs, features, GMM systems in Kaldi formats, graphs, decoding, scoring."""
