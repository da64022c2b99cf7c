"""Augmentation: the training images distorted afresh every epoch. Random affine and
elastic distortions folded into one sampling grid (``distortions``), the smooth elastic
field's basis (``smoothing``), the images of each epoch for the training loop
(``epochs``), prepared by a background process (``worker``)."""
