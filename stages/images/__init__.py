"""Pictures of digits: the contact sheet of misclassified test images (``contact_sheet``)."""
