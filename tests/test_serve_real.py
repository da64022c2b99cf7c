"""Real handwriting by writers outside MNIST (scikit-learn's optdigits: 1,797 digits by 43
people), posted to ``/predict`` of a server with a model trained on the real MNIST: every
answer must be the object ``predict --json`` prints for the same file, and most must be
right. The default model's own figures are ``bench/serve_handwriting.py``'s."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.in_process import invoke_stage
from support.optdigits import write_scans
from support.serve_process import read_answer, serving

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

#: the 3-epoch test model reads 0.849 of them (the default model of dvc repro 0.915)
MIN_ACCURACY = 0.82


def test_real_handwriting_is_answered_as_predict_reads_it(real_model: Path, tmp_path: Path) -> None:
    scans = write_scans(tmp_path / "scans")
    assert len(scans) == 1797
    result = invoke_stage("predict", tmp_path, "scans", "--model", str(real_model), "--json")
    assert result.returncode == 0, result.stderr
    expected = {Path(item.pop("file")).name: item for item in json.loads(result.stdout)}

    with serving(tmp_path, "--model", str(real_model)) as server:
        connection = server.connection()  # one kept-alive connection, as a page keeps it
        answers = {}
        for path, _ in scans:
            connection.request("POST", "/predict", body=path.read_bytes())
            answer = read_answer(connection.getresponse())
            assert answer.status == 200, answer.body
            answers[path.name] = answer.json
        connection.close()

    assert answers == expected
    predicted = np.array([int(answers[path.name]["prediction"]) for path, _ in scans])
    labels = np.array([label for _, label in scans])
    accuracy = float((predicted == labels).mean())
    print(f"accuracy {accuracy:.4f} on {len(scans)} optdigits scans")
    assert accuracy >= MIN_ACCURACY
