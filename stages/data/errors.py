"""The data helpers' exception: a plain one-line message naming the file, URL or table at fault."""


class DataError(Exception):
    """Input data (raw or processed files, a mirror, a checksum table) is missing or wrong."""


class IDXFormatError(DataError, ValueError):
    """An IDX file is malformed: bad magic number, dtype code, dimensions or length."""
