"""What the commands share on the command line: options, logging, one-line errors and exit
codes (``app``), params.yaml validation (``params``) and progress bars (``progress``)."""
