"""Model files built by hand for the loader's tests: a small valid model whose first weights
member is replaced by a huge (but tiny once compressed) array."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from nnlib.serialization import model_bytes
from support.models import digit_model

#: float32 [16384, 8192]: 512 MiB of weights
HUGE_SHAPE = (16384, 8192)
HUGE_BYTES = HUGE_SHAPE[0] * HUGE_SHAPE[1] * 4
_ZEROS = bytes(1 << 20)


def write_huge_member_model(path: Path, *, meta_agrees: bool = False) -> Path:
    """``path``: ``support.models.digit_model`` with ``layer0_weights.npy`` replaced by a
    consistent, deflate-compressed member of float32 zeros of ``HUGE_SHAPE`` (the file stays
    near 0.5 MB). With ``meta_agrees`` the model description says layer 0 has that shape too."""
    with zipfile.ZipFile(io.BytesIO(model_bytes(digit_model()))) as source:
        entries = {info.filename: source.read(info) for info in source.infolist()}
    if meta_agrees:
        meta = json.loads(str(np.load(io.BytesIO(entries["meta.npy"]))))
        meta["layers"][0]["input_size"], meta["layers"][0]["output_size"] = HUGE_SHAPE
        meta["layers"][1]["input_size"] = HUGE_SHAPE[1]
        buffer = io.BytesIO()
        np.save(buffer, np.array(json.dumps(meta)), allow_pickle=False)
        entries["meta.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            if name != "layer0_weights.npy":
                archive.writestr(name, data)
                continue
            with archive.open(name, "w", force_zip64=True) as member:
                header = {"descr": "<f4", "fortran_order": False, "shape": HUGE_SHAPE}
                np.lib.format.write_array_header_1_0(member, header)
                for _ in range(HUGE_BYTES // len(_ZEROS)):
                    member.write(_ZEROS)
    return path
