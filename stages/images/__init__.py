"""Pictures of digits and garments: reading a user's image safely (``reading``), finding
images in folders (``files``), separating ink from paper (``ink``, with the grey-level
statistics in ``levels``, which way round the picture is in ``polarity`` and the paper's
level in ``paper``), the constructions that turn a picture into a model input as MNIST and
Fashion-MNIST were built (``mnist``, ``fashion``, chosen by ``constructions``), a folder
of labelled pictures as a dataset (``labelled_folder``, built on every core by ``parallel_build``,
checked by ``folder_dataset``), and the contact sheet of misclassified test images
(``contact_sheet``)."""
