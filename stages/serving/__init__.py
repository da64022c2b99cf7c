"""The local server of ``python -m stages.serve``: the page to draw a digit on
(``page.html``), the request handler that answers it and programs (``handler``), reading a
request's body within bounds (``body``), how many pictures are read at once (``gate``), the
server that binds and bounds connections (``server``) and the limits themselves
(``limits``). Standard library only, besides the reader the commands share."""
