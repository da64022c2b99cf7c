"""A trained model reading users' pictures, one at a time: the model file loaded and
checked, and one picture (a file, or its bytes) through the construction, the
normalization and the model to the answer. ``predict`` and ``serve`` both read through
``Reader``, so that the two can never disagree."""
