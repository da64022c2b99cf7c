"""The network train builds from params.yaml's ``model`` section: planned first, each layer's
nnlib config and shapes with the key it comes from (``plan``), then the memory its training
needs (``memory``), then built from nnlib's layers (``build``)."""
