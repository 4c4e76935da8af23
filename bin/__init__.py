"""nnetavg's command-line programs: one thin click command per module, Kaldi names.

Installed as console commands (``nnet-train-simple`` -> ``nnetavg.bin.nnet_train_simple:main``).
Library modules never import from here.
"""
