"""The data the pipeline reads: data sources and their files (``sources``), checksums of
decompressed files (``checksums``), fetching from mirrors (``mirrors``, ``fetch``), the IDX
parser (``idx``), the raw files of a source (``raw``), the validation split (``splits``),
normalization (``normalization``) and the processed-data layout (``processed``)."""
