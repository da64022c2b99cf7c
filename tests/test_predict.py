"""``python -m stages.predict`` run as a user runs it: output, saved inputs, and bad input."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.in_process import invoke_stage
from support.models import digit_cnn, digit_model
from support.stage import (
    error_lines,
    run_measured,
    run_stage,
    stage_command,
    stage_environment,
    temporaries,
    without_root_overrides,
)
from support.user_images import png_header_only, ring_digit, seven_digit

from nnlib.model import Model
from stages.images.constructions import normalize
from stages.images.fashion import fashion_item
from stages.images.files import find_images
from stages.images.mnist import mnist_digit
from stages.images.reading import Picture, read_image
from stages.reader.reader import Reader

STANDARDIZE = {"method": "standardize", "divisor": 255.0, "mean": 0.1307, "std": 0.3081}


def write_digit(path: Path, ink: np.ndarray) -> Path:
    """``ink`` coverage as dark ink on white paper, saved in the format ``path`` names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(240 - 220 * ink).astype(np.uint8)).convert("RGB").save(path)
    return path


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    """A scratch folder with a model (standardized inputs) and two digit photos."""
    digit_model(normalization=STANDARDIZE).save(tmp_path / "model.npz")
    write_digit(tmp_path / "digits" / "seven.png", seven_digit())
    write_digit(tmp_path / "digits" / "zero.jpg", ring_digit())
    return tmp_path


def predict(pictures: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return invoke_stage("predict", pictures, *args, "--model", "model.npz")


def test_a_table_of_predictions(pictures: Path) -> None:
    result = predict(pictures, "digits")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "prediction", "confidence", "top-3"]
    assert [line.split()[0] for line in lines[1:]] == ["digits/seven.png", "digits/zero.jpg"]
    for line in lines[1:]:
        _, predicted, confidence, first, first_p, *_ = line.replace(",", "").split()
        assert predicted == first
        assert confidence == first_p
    assert result.stderr == ""


def test_json_follows_the_model_files_normalization(pictures: Path) -> None:
    result = predict(pictures, "digits/seven.png", "digits/zero.jpg", "--json", "--top-k", "4")
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [a["file"] for a in answers] == ["digits/seven.png", "digits/zero.jpg"]

    model = Model.load(pictures / "model.npz")
    images = np.stack([mnist_digit(read_image(pictures / a["file"])) for a in answers])
    expected = model.predict(normalize(images, STANDARDIZE))
    unnormalized = model.predict(normalize(images, {"method": "scale"}))
    for answer, probabilities, wrong in zip(answers, expected, unnormalized, strict=True):
        assert set(answer) == {"file", "prediction", "confidence", "top_k"}
        top = answer["top_k"]
        assert [set(t) for t in top] == [{"class", "probability"}] * 4
        assert answer["prediction"] == top[0]["class"]
        assert answer["confidence"] == top[0]["probability"]
        assert [t["probability"] for t in top] == sorted(
            (t["probability"] for t in top), reverse=True
        )
        order = np.argsort(-probabilities)[:4]
        assert [t["class"] for t in top] == [str(i) for i in order]
        assert np.allclose([t["probability"] for t in top], probabilities[order], atol=1e-6)
        assert not np.allclose([t["probability"] for t in top], wrong[order], atol=1e-3)


def test_a_convolutional_model_predicts_as_an_mlp_does(pictures: Path) -> None:
    """A model whose first layer takes images: the same command, table, JSON and saved
    inputs; its answers are its own on the constructed pictures."""
    digit_cnn(normalization=STANDARDIZE, seed=5).save(pictures / "model.npz")
    result = predict(pictures, "digits", "--json", "--save-inputs", "seen")
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [a["file"] for a in answers] == ["digits/seven.png", "digits/zero.jpg"]
    model = Model.load(pictures / "model.npz")
    assert model.input_shape == (1, 28, 28)
    seen = [np.asarray(Image.open(pictures / "seen" / f"{n}.png")) for n in ("seven", "zero")]
    images = np.stack([mnist_digit(read_image(pictures / a["file"])) for a in answers])
    assert np.array_equal(np.stack(seen), images)
    expected = model.predict(normalize(images, STANDARDIZE).reshape(2, 1, 28, 28))
    for answer, probabilities in zip(answers, expected, strict=True):
        assert answer["prediction"] == str(int(probabilities.argmax()))
        assert answer["confidence"] == pytest.approx(float(probabilities.max()), abs=1e-6)
    table = predict(pictures, "digits")
    assert table.returncode == 0, table.stderr
    assert [line.split()[1] for line in table.stdout.splitlines()[1:]] == [
        a["prediction"] for a in answers
    ]


def test_a_convolutional_model_for_other_images_is_refused(pictures: Path) -> None:
    """784 inputs, but as 14x56 images: not the 28x28 pictures its metadata says."""
    digit_cnn(input_shape=(1, 14, 56)).save(pictures / "model.npz")
    result = predict(pictures, "digits")
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: model.npz: the model takes images of shape (1, 14, 56), not (1, 28, 28) "
        "([28, 28] images); retrain it (dvc repro)"
    ]


def test_top_k_is_capped_at_the_number_of_classes(pictures: Path) -> None:
    result = predict(pictures, "digits/seven.png", "--json", "--top-k", "50")
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout)[0]["top_k"]
    assert sorted(t["class"] for t in top) == [str(k) for k in range(10)]
    assert abs(sum(t["probability"] for t in top) - 1) < 1e-5


def test_saved_inputs_are_what_the_model_saw(pictures: Path) -> None:
    write_digit(pictures / "digits" / "more" / "seven.bmp", seven_digit(width=30))
    result = predict(pictures, "digits", "--save-inputs", "seen")
    assert result.returncode == 0, result.stderr
    saved = sorted(p.name for p in (pictures / "seen").iterdir())
    assert saved == ["seven-2.png", "seven.png", "zero.png"]
    for name, source in [
        ("seven.png", "digits/more/seven.bmp"),  # inputs in name order: the folder first
        ("seven-2.png", "digits/seven.png"),
        ("zero.png", "digits/zero.jpg"),
    ]:
        with Image.open(pictures / "seen" / name) as image:
            assert (image.mode, image.size) == ("L", (28, 28))
            pixels = np.asarray(image)
        assert np.array_equal(pixels, mnist_digit(read_image(pictures / source)))


def test_folders_are_searched_for_image_files_only(pictures: Path) -> None:
    (pictures / "digits" / "notes.txt").write_text("not an image")
    write_digit(pictures / "digits" / ".hidden" / "three.png", seven_digit())
    write_digit(pictures / "digits" / "sub" / "one.webp", seven_digit(width=8))
    result = predict(pictures, "digits", "--json")
    assert result.returncode == 0, result.stderr
    files = [a["file"] for a in json.loads(result.stdout)]
    assert files == ["digits/seven.png", "digits/sub/one.webp", "digits/zero.jpg"]


def test_bad_images_are_reported_one_line_each_and_the_rest_predicted(pictures: Path) -> None:
    bad = pictures / "bad"
    bad.mkdir()
    (bad / "notes.png").write_text("a text file with an image's name\n")
    whole = (pictures / "digits" / "seven.png").read_bytes()
    (bad / "truncated.png").write_bytes(whole[: len(whole) // 3])
    Image.new("RGB", (300, 200), (235, 235, 230)).save(bad / "blank.png")
    (bad / "bomb.png").write_bytes(png_header_only(20_000, 20_000))
    (pictures / "empty").mkdir()
    inputs = [
        "digits/seven.png",
        "bad/notes.png",
        "bad/truncated.png",
        "bad/blank.png",
        "bad/bomb.png",
        "empty",
        "missing.png",
        "digits/zero.jpg",
    ]
    result = predict(pictures, *inputs, "--json")
    assert result.returncode == 1
    answers = json.loads(result.stdout)
    assert [a["file"] for a in answers] == inputs
    assert "prediction" in answers[0]
    assert "prediction" in answers[-1]
    expected = {
        "bad/notes.png": "not an image",
        "bad/truncated.png": "cannot decode the image",
        "bad/blank.png": "no ink found",
        "bad/bomb.png": "image too large",
        "empty": "no image files in this folder",
        "missing.png": "no such file or directory",
    }
    errors = {a["file"]: a["error"] for a in answers if "error" in a}
    assert set(errors) == set(expected)
    for file, message in expected.items():
        assert errors[file].startswith(message), errors[file]
        assert "\n" not in errors[file]
    assert set(answers[1]) == {"file", "error"}
    lines = error_lines(result)
    assert lines == [f"error: {file}: {errors[file]}" for file in inputs if file in errors]
    assert len(result.stderr.splitlines()) == len(lines)  # no traceback, nothing else

    table = predict(pictures, *inputs)
    assert table.returncode == 1
    assert len(table.stdout.splitlines()) == 3  # the header and the two good images
    assert error_lines(table) == lines


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (None, "no model file there"),
        (b"not a zip file", "model.npz"),
        ("truncate", "model.npz"),
        ("cifar", "dataset must be 'mnist', 'fashion-mnist' or 'images', got 'cifar'"),
    ],
)
def test_a_missing_or_unusable_model_predicts_nothing(
    pictures: Path, damage: object, message: str
) -> None:
    model = pictures / "model.npz"
    if damage is None:
        model.unlink()
    elif damage == "truncate":
        model.write_bytes(model.read_bytes()[:1000])
    elif damage == "cifar":
        digit_model(dataset="cifar").save(model)
    else:
        model.write_bytes(damage)
    result = predict(pictures, "digits", "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: model.npz")
    assert message in lines[0]


def test_a_fashion_model_gets_fashion_mnists_construction(pictures: Path) -> None:
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot"]  # fmt: skip
    digit_model(dataset="fashion-mnist", class_names=names).save(pictures / "model.npz")
    result = predict(pictures, "digits/zero.jpg", "--json", "--save-inputs", "seen")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["prediction"] in names
    seen = np.asarray(Image.open(pictures / "seen" / "zero.png"))
    picture = read_image(pictures / "digits" / "zero.jpg")
    assert np.array_equal(seen, fashion_item(picture))
    assert not np.array_equal(seen, mnist_digit(picture))


@pytest.mark.parametrize(
    ("construction", "built", "other"),
    [("mnist", mnist_digit, fashion_item), ("fashion-mnist", fashion_item, mnist_digit)],
)
def test_a_model_of_your_own_pictures_builds_inputs_as_its_metadata_says(
    pictures: Path,
    construction: str,
    built: Callable[[Picture], np.ndarray],
    other: Callable[[Picture], np.ndarray],
) -> None:
    """A model trained on a folder (dataset images) names its construction; predict builds
    every input with it, not by the dataset's name, and answers with the folder's classes."""
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    model = digit_model(dataset="images", class_names=names)
    model.metadata["construction"] = construction
    model.save(pictures / "model.npz")
    result = predict(pictures, "digits/zero.jpg", "--json", "--save-inputs", "seen")
    assert result.returncode == 0, result.stderr
    (answer,) = json.loads(result.stdout)
    assert answer["prediction"] in names
    assert {entry["class"] for entry in answer["top_k"]} <= set(names)
    seen = np.asarray(Image.open(pictures / "seen" / "zero.png"))
    picture = read_image(pictures / "digits" / "zero.jpg")
    assert np.array_equal(seen, built(picture))
    assert not np.array_equal(seen, other(picture))


@pytest.mark.parametrize(
    "args",
    [[], ["digits", "--top-k", "0"], ["digits", "--top-k", "three"], ["digits", "--color"]],
)
def test_usage_errors_exit_2(pictures: Path, args: list[str]) -> None:
    result = invoke_stage("predict", pictures, *args)
    assert result.returncode == 2
    assert len(error_lines(result)) == 1
    assert result.stdout == ""


@pytest.mark.parametrize(("target", "code"), [("seen", 2), ("seen/inside", 2)])
def test_save_inputs_into_a_file_fails_before_any_work(
    pictures: Path, target: str, code: int
) -> None:
    (pictures / "seen").write_text("a file")
    result = predict(pictures, "digits", "--save-inputs", target)
    assert result.returncode == code
    assert len(error_lines(result)) == 1
    assert "seen" in error_lines(result)[0]
    assert result.stdout == ""


def test_a_failure_on_one_image_is_that_images_error(pictures: Path) -> None:
    def fragile(picture: Picture) -> np.ndarray:
        if picture.rgb.shape[0] == 300:
            raise ValueError("cannot handle 300 rows")
        return np.zeros((28, 28), dtype=np.uint8)

    entries = find_images([pictures / "digits", pictures / "missing.png"])
    write_digit(pictures / "short.png", seven_digit(size=(200, 200), origin=(20, 50)))
    reader = Reader.load(pictures / "model.npz")
    reader.construct = fragile
    outcomes = list(reader.outcomes([*entries, *find_images([pictures / "short.png"])]))
    seen = [outcome for _, outcome, _ in outcomes]
    assert (
        seen[0]
        == seen[1]
        == ("unexpected ValueError: cannot handle 300 rows (--log-level DEBUG traces)")
    )
    assert seen[2] == "no such file or directory"
    assert isinstance(seen[3], np.ndarray)
    assert [probabilities is None for _, _, probabilities in outcomes] == [True] * 3 + [False]


def predict_as_user(pictures: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*without_root_overrides(), *stage_command("predict", *args, "--model", "model.npz")]
    return subprocess.run(
        command, cwd=pictures, env=stage_environment(), capture_output=True, text=True, check=False
    )


def test_save_inputs_never_writes_over_an_input(pictures: Path) -> None:
    """``--save-inputs .`` beside ``my-digit.png`` would replace the user's own picture."""
    mine = write_digit(pictures / "my-digit.png", seven_digit())
    before = mine.read_bytes()
    for extra in ([], ["--overwrite"]):
        result = predict(pictures, "my-digit.png", "--save-inputs", ".", *extra)
        assert result.returncode == 2
        assert error_lines(result) == [
            "error: --save-inputs .: would write my-digit.png over the input my-digit.png; "
            "save the inputs into another folder"
        ]
        assert result.stdout == ""
        assert mine.read_bytes() == before
    assert temporaries(pictures) == []


def test_save_inputs_replaces_no_file_it_did_not_write_unless_asked(pictures: Path) -> None:
    seen = pictures / "seen"
    seen.mkdir()
    (seen / "zero.png").write_bytes(b"the user's own file")
    refused = predict(pictures, "digits", "--save-inputs", "seen")
    assert refused.returncode == 2
    assert error_lines(refused) == [
        "error: --save-inputs seen: seen/zero.png already there, and predict replaces no file "
        "it did not write in this run; choose an empty folder, or add --overwrite"
    ]
    assert refused.stdout == ""  # refused before any picture was read
    assert sorted(p.name for p in seen.iterdir()) == ["zero.png"]
    assert (seen / "zero.png").read_bytes() == b"the user's own file"

    replaced = predict(pictures, "digits", "--save-inputs", "seen", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(p.name for p in seen.iterdir()) == ["seven.png", "zero.png"]
    assert Image.open(seen / "zero.png").size == (28, 28)


def test_a_file_name_the_terminal_cannot_show_is_escaped_not_lost(pictures: Path) -> None:
    """A name that is not UTF-8, with stdout strictly UTF-8 (or plain ASCII)."""
    odd = os.fsdecode(b"digits/caf\xe9.png")
    (pictures / "digits" / "seven.png").rename(pictures / odd)
    for encoding in ("utf-8", "ascii"):
        result = run_stage(  # the interpreter's own stdout, in the encoding it is told
            "predict",
            pictures,
            "digits",
            "--model",
            "model.npz",
            env={"PYTHONIOENCODING": encoding},
        )
        assert result.returncode == 0, result.stderr
        rows = [line.split()[0] for line in result.stdout.splitlines()[1:]]
        assert rows == ["digits/caf\\xe9.png", "digits/zero.jpg"]
    answer = json.loads(predict(pictures, odd, "--json").stdout)
    assert answer[0]["file"] == "digits/caf\\xe9.png"


def test_an_unreadable_file_named_is_that_files_error(pictures: Path) -> None:
    """As for a file found in a folder: its own error line, the others predicted, exit 1."""
    locked = pictures / "digits" / "seven.png"
    locked.chmod(0)
    result = predict_as_user(pictures, "digits/zero.jpg", "digits/seven.png")
    assert result.returncode == 1
    assert error_lines(result) == ["error: digits/seven.png: Permission denied"]
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["digits/zero.jpg"]


def test_a_folder_it_cannot_write_is_refused_before_any_picture_is_read(pictures: Path) -> None:
    (pictures / "seen").mkdir()
    (pictures / "seen").chmod(0o555)
    result = predict_as_user(pictures, "digits", "--save-inputs", "seen")
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert line.startswith("error: --save-inputs seen: seen/")
    assert line.endswith("cannot write there (Permission denied)")
    assert result.stdout == ""
    assert list((pictures / "seen").iterdir()) == []


def linked_copies(source: Path, folder: Path, count: int) -> Path:
    """``folder`` holding ``count`` hard links to ``source``, named in order."""
    folder.mkdir()
    for n in range(count):
        os.link(source, folder / f"digit{n:05d}{source.suffix}")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "table"])
def test_peak_memory_does_not_grow_with_the_number_of_files(
    pictures: Path, output: list[str]
) -> None:
    """Ten times the files, the same peak: pictures, inputs and results are held a batch
    at a time, the output written as it comes."""
    source = write_digit(pictures / "small.png", seven_digit((40, 40), (8, 12), 24, 4))
    peaks = {}
    for count in (400, 4000):
        folder = linked_copies(source, pictures / f"many{count}", count)
        result = run_measured("predict", pictures, folder.name, "--model", "model.npz", *output)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.count('"file"') if output else len(result.stdout.splitlines()) - 1
        assert lines == count
        peaks[count] = result.peak_bytes
    assert peaks[4000] - peaks[400] < 4 * 2**20, peaks


def open_files_limit(n: int) -> Callable[[], None]:
    """A ``preexec_fn`` that lets the child hold at most ``n`` files open."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return limit


@pytest.mark.slow
def test_save_inputs_of_more_pictures_than_files_it_may_open(pictures: Path) -> None:
    """2,000 pictures under a limit of 256 open files (``ulimit -n 256``, macOS's default):
    all saved."""
    source = write_digit(pictures / "small.png", seven_digit((40, 40), (8, 12), 24, 4))
    folder = linked_copies(source, pictures / "many", 2000)
    result = subprocess.run(
        stage_command("predict", str(folder), "--model", "model.npz", "--save-inputs", "seen"),
        cwd=pictures,
        env=stage_environment(),
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=open_files_limit(256),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    saved = sorted(p.name for p in (pictures / "seen").iterdir())
    assert saved == [f"digit{n:05d}.png" for n in range(2000)]
    assert temporaries(pictures) == []


def test_a_closed_standard_output_is_one_line(pictures: Path) -> None:
    """``predict ... >&-``: Python gives the command no stdout at all."""
    result = subprocess.run(
        stage_command("predict", "digits", "--model", "model.npz"),
        cwd=pictures,
        env=stage_environment(),
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        preexec_fn=lambda: os.close(1),
    )
    assert result.returncode == 1
    assert result.stderr == "error: standard output is closed: nowhere to print the answers\n"


@pytest.mark.slow
@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "table"])
def test_a_reader_that_goes_away_ends_predict_quietly(pictures: Path, output: list[str]) -> None:
    """``predict FOLDER | head -1``: no error line, the exit status a Unix tool killed by
    SIGPIPE has (141), as the shell reports for ``yes | head -1``."""
    source = write_digit(pictures / "small.png", seven_digit((40, 40), (8, 12), 24, 4))
    folder = linked_copies(source, pictures / "many", 1500)
    process = subprocess.Popen(
        stage_command("predict", str(folder), "--model", "model.npz", *output),
        cwd=pictures,
        env=stage_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline()
    process.stdout.close()  # as head does after its line
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 141
    assert stderr == b""


def test_a_model_with_thousands_of_extra_entries_is_one_short_line(pictures: Path) -> None:
    with zipfile.ZipFile(pictures / "model.npz", "a") as archive:
        for n in range(20_000):
            archive.writestr(f"extra{n:05d}.npy", b"")
    result = predict(pictures, "digits")
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: model.npz: unexpected entries 'extra00000', 'extra00001', 'extra00002' and "
        "19997 more"
    ]


def special_files(folder: Path) -> list[Path]:
    """``folder/f.png``, a FIFO no one writes to, and ``folder/z.png``, a link to /dev/zero:
    opening the first waits for ever, reading the second never ends."""
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "f.png")
    (folder / "z.png").symlink_to("/dev/zero")
    return [folder / "f.png", folder / "z.png"]


def test_special_files_are_never_opened(pictures: Path) -> None:
    """In a folder they are not pictures (skipped, as other files are); named on the command
    line each is that file's error line. A regression hangs: the run has a timeout."""
    special_files(pictures / "digits")
    result = run_stage(
        "predict",
        pictures,
        "digits",
        "digits/f.png",
        "digits/z.png",
        "--model",
        "model.npz",
        timeout=30,
    )
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: digits/f.png: not a regular file (a named pipe), not an image",
        "error: digits/z.png: not a regular file (a character device), not an image",
    ]
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == [
        "digits/seven.png",
        "digits/zero.jpg",
    ]


def test_an_unreadable_folder_is_that_folders_error(pictures: Path) -> None:
    """Inside a folder searched, or named on the command line: one line each naming it, the
    other pictures still predicted, exit 1 (not skipped without a word, nor "no image
    files")."""
    locked = pictures / "digits" / "locked"
    write_digit(locked / "four.png", seven_digit())
    locked.chmod(0)
    try:
        result = predict_as_user(pictures, "digits", "digits/locked")
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: digits/locked: cannot read this folder (Permission denied)",
        "error: digits/locked: cannot read this folder (Permission denied)",
    ]
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == [
        "digits/seven.png",
        "digits/zero.jpg",
    ]


def test_save_inputs_of_pictures_with_the_longest_names(pictures: Path) -> None:
    """255 bytes is the longest name a file may have: the saved name and the temporary
    name beside it are cut to fit, and stay distinct."""
    long = "\u00e9" * 100 + "x" * 50  # 250 bytes in UTF-8
    folder = pictures / "long"
    write_digit(folder / f"{long}a.png", seven_digit())
    write_digit(folder / f"{long}b.png", seven_digit(width=8))
    # no suffix: "<stem>.png" would be 259 bytes; cut, the two stems are the same
    bare = [
        write_digit(pictures / f"bare{n}.png", seven_digit()).rename(pictures / ("y" * 254 + n))
        for n in "12"
    ]
    assert {len(os.fsencode(p.name)) for p in [*folder.iterdir(), *bare]} == {255}
    result = predict(pictures, "long", *(p.name for p in bare), "--save-inputs", "seen")
    assert result.returncode == 0, result.stderr
    saved = sorted((pictures / "seen").iterdir())
    assert len(saved) == 4
    assert {p.name for p in saved} >= {"y" * 251 + ".png", "y" * 249 + "-2.png"}
    assert all(len(os.fsencode(path.name)) <= 255 for path in saved)
    assert all(path.suffix == ".png" for path in saved)
    assert all(Image.open(path).size == (28, 28) for path in saved)
    assert temporaries(pictures) == []


def test_class_names_are_shown_escaped_in_the_table_as_they_are_in_json(pictures: Path) -> None:
    """A folder may name a class with a line break or a tab in it: the table shows it
    escaped, one row per picture; JSON keeps the name as it is."""
    names = [f"class\n{n}" for n in range(9)] + ["tab\there"]
    model = digit_model(dataset="images", class_names=names)
    model.metadata["construction"] = "mnist"
    model.save(pictures / "model.npz")
    table = predict(pictures, "digits", "--top-k", "10")
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert len(rows) == 3  # the header and one row per picture
    for row in rows[1:]:
        assert row.split()[1] in {*(f"class\\n{n}" for n in range(9)), "tab\\there"}
        assert "tab\\there" in row
    answers = json.loads(predict(pictures, "digits", "--json").stdout)
    assert {answer["prediction"] for answer in answers} <= set(names)
