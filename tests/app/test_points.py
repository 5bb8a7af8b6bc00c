"""Guided morphs: point-pair files, the point loss (values and gradient by hand),
automatic points, and point pairs through the pipeline (outputs, maps files, resume)."""

import json

import numpy as np
import pytest

from conftest import TOY_A, TOY_B, Unreadable, assert_one_line_error, read_rgb, run_cli
from diffmorph.errors import InputError
from diffmorph.io import points as pf

HEADER = "source_x,source_y,target_x,target_y\n"


# ----------------------------------------------------------------------------- formats


def test_csv_and_json_text_and_files_read_the_same_pairs(tmp_path):
    rows = np.array([[1.5, 2.0, 30.25, 4.0], [10.0, 20.0, 5.0, 6.0]])
    csv_text = HEADER + "1.5, 2, 30.25, 4\n10,20,5,6\n"
    json_text = json.dumps([{"source": [1.5, 2], "target": [30.25, 4]}, {"source": [10, 20], "target": [5, 6]}])
    (tmp_path / "p.csv").write_text(csv_text)
    (tmp_path / "p.json").write_text(json_text)
    for given in (csv_text, json_text, tmp_path / "p.csv", str(tmp_path / "p.json")):
        np.testing.assert_array_equal(pf.read_points(given), rows)
    np.testing.assert_array_equal(pf.as_points(rows.tolist()), rows)
    np.testing.assert_array_equal(pf.as_points(json.loads(json_text)), rows)


def test_written_points_read_back(tmp_path):
    rows = np.array([[0.123456, 99.5, -0.5, 7.0]])
    pf.write_points(tmp_path / "out.csv", rows)
    np.testing.assert_allclose(pf.read_points(tmp_path / "out.csv"), rows, rtol=1e-9)


def test_a_bom_blank_lines_and_header_case_are_accepted():
    text = "\ufeffSource_X,source_y,TARGET_X,target_y\n\n1,2,3,4\n\n"
    np.testing.assert_array_equal(pf.read_points(text), [[1, 2, 3, 4]])


@pytest.mark.parametrize(
    "name, content, needles",
    [
        ("empty.csv", "", ["empty.csv", "no point pairs"]),
        ("header_only.csv", HEADER, ["header_only.csv", "no point pairs"]),
        ("header.csv", "x,y,u,v\n1,2,3,4\n", ["header.csv", "the header must be source_x,source_y,target_x,target_y"]),
        ("word.csv", HEADER + "1,2,3,4\n1,two,3,4\n", ["word.csv row 2", "'two' is not a number"]),
        ("nan.csv", HEADER + "nan,2,3,4\n", ["nan.csv row 1", "not a finite number"]),
        ("inf.csv", HEADER + "1,2,3,-inf\n", ["inf.csv row 1", "not a finite number"]),
        ("short.csv", HEADER + "1,2,3\n", ["short.csv row 1", "expected 4 values"]),
        (
            "twice.csv",
            HEADER + "1,2,3,4\n5,6,7,8\n1,2,9,9\n",
            ["twice.csv row 3", "source point (1, 2) is already paired with (3, 4) in row 1"],
        ),
        ("many.csv", HEADER + "".join(f"{k},0,0,0\n" for k in range(1001)), ["many.csv", "1001 point pairs"]),
        ("obj.json", '{"source": [1, 2], "target": [3, 4]}', ["obj.json", "expected a list of"]),
        ("key.json", '[{"source": [1, 2], "to": [3, 4]}]', ["key.json row 1", '"target"']),
        ("pt.json", '[{"source": [1, 2, 3], "target": [3, 4]}]', ["pt.json row 1", "source must be [x, y]"]),
        ("str.json", '[{"source": ["1", 2], "target": [3, 4]}]', ["str.json row 1", "'1' is not a number"]),
        ("broken.json", '[{"source": [1, 2]', ["broken.json", "not valid JSON"]),
        ("empty.json", "[]", ["empty.json", "no point pairs"]),
        ("points.txt", HEADER + "1,2,3,4\n", ["points.txt", "must end in .csv or .json"]),
    ],
)
def test_every_bad_file_is_one_line_naming_the_file_and_row(tmp_path, name, content, needles):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError) as caught:
        pf.read_points(path)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_missing_unreadable_and_folder_files(tmp_path, deny_unreadable):
    with pytest.raises(InputError, match="nope.csv: no such file"):
        pf.read_points(tmp_path / "nope.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputError, match="dir.csv: not a regular file"):
        pf.read_points(tmp_path / "dir.csv")
    locked = tmp_path / "locked.csv"
    locked.write_text(HEADER + "1,2,3,4\n")
    with pytest.raises(InputError, match="locked.csv: cannot be read"):
        pf.read_points(Unreadable(locked))


def test_arrays_of_the_wrong_shape_or_values():
    with pytest.raises(InputError, match=r"expected shape \(N, 4\)"):
        pf.as_points(np.zeros((3, 3)))
    with pytest.raises(InputError, match="no point pairs"):
        pf.as_points(np.zeros((0, 4)))
    with pytest.raises(InputError, match="points row 2: nan is not a finite number"):
        pf.as_points([[1, 2, 3, 4], [1, 2, 3, np.nan]])


def test_points_outside_their_image_name_the_row_and_image():
    points = np.array([[0, 0, 0, 0], [-0.5, 9.5, 19.5, -0.5], [3, 4, 20, 5]])
    pf.check_points(points[:2], (10, 10), (8, 20))  # the edges of the outer pixels are inside
    with pytest.raises(InputError, match=r"points row 3: the target point \(20, 5\) is outside the target image"):
        pf.check_points(points, (10, 10), (8, 20))
    with pytest.raises(InputError, match="row 2: the source point"):
        pf.check_points(points[:2], (9, 10), (8, 20))


def test_normalise_uses_pixel_centres_and_each_image_own_size():
    # a 20 x 10 (W x H) source and a 5 x 40 target: the centre of the top-left pixel is 0.5 / size
    fractions = pf.normalise(np.array([[0, 0, 4, 39], [19.5, -0.5, 2, 19.5]]), (10, 20), (40, 5))
    np.testing.assert_allclose(fractions, [[0.025, 0.05, 0.9, 0.9875], [1.0, 0.0, 0.5, 0.5]], rtol=1e-6)
    back = pf.to_pixels(fractions, (10, 20), (40, 5))
    np.testing.assert_allclose(back, [[0, 0, 4, 39], [19.5, -0.5, 2, 19.5]], atol=1e-5)


# ----------------------------------------------------------------------------- the loss


def _maps(size, ab=(0.0, 0.0), ba=(0.0, 0.0)):
    maps = np.zeros((1, size, size, 16), np.float32)
    maps[..., 6:8] = ab  # A->B flow (dy, dx) in flow units
    maps[..., 14:16] = ba
    return maps


def test_working_points_follow_the_config_size():
    from diffmorph.core.points import working_points

    # the fraction of the centre of pixel 3 of 8 is 3.5 / 8; at S = 16 it is pixel 6.5, at S = 4 pixel 1.25
    u = np.array([[3.5 / 8, 0.5, 1.0, 0.0]], np.float32)
    np.testing.assert_allclose(working_points(u, 16), [[6.5, 7.5, 15.5, -0.5]])
    np.testing.assert_allclose(working_points(u, 4), [[1.25, 1.5, 3.5, -0.5]])


def test_point_loss_and_gradient_by_hand_for_one_pair():
    import tensorflow as tf

    from diffmorph.config import MorphConfig
    from diffmorph.core.points import point_loss

    size = 16
    config = MorphConfig(size=size, point_weight=0.5, warp_scale=0.025)  # 0.4 pixels per flow unit
    # source point (x 2, y 3), target point (x 5, y 3) in 16 x 16 images = working pixels: b - a = (dy 0, dx 3)
    u = pf.normalise(np.array([[2, 3, 5, 3]]), (16, 16), (16, 16))
    maps = tf.constant(_maps(size, ab=(0.0, 5.0), ba=(1.0, -5.0)))  # A->B dx 2 px; B->A dy 0.4 px, dx -2 px
    with tf.GradientTape() as tape:
        tape.watch(maps)
        loss = point_loss(maps, u, config)
    # A->B error at b: (0 - 0, 2 - 3) -> 1; B->A error at a: (0.4 - 0, -2 + 3) -> 0.16 + 1
    per_pixel = (256 / size) ** 2  # errors weighed as pixels of a 256 working image
    assert float(loss) == pytest.approx(0.5 * per_pixel * (1.0 + 1.16), rel=1e-6)
    grad = tape.gradient(loss, maps).numpy()
    expected = np.zeros_like(grad)
    # dL/dmap = weight * (256/S)^2 * 2 * error * 0.4 (pixels per unit), all at the one pixel under each point
    expected[0, 3, 5, 7] = 0.5 * per_pixel * 2 * -1.0 * 0.4  # A->B dx at the target point (row 3, column 5)
    expected[0, 3, 2, 14] = 0.5 * per_pixel * 2 * 0.4 * 0.4  # B->A dy at the source point (row 3, column 2)
    expected[0, 3, 2, 15] = 0.5 * per_pixel * 2 * 1.0 * 0.4  # B->A dx
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-6)


def test_point_loss_samples_the_flow_bilinearly_between_pixels():
    import tensorflow as tf

    from diffmorph.config import MorphConfig
    from diffmorph.core.points import point_loss

    size = 16
    config = MorphConfig(size=size, point_weight=(size / 256) ** 2, warp_scale=0.125)  # 2 px per flow unit
    maps = _maps(size)
    maps[0, :, :, 7] = np.arange(size, dtype=np.float32)[None, :]  # A->B dx: column units, 2 px each
    # target point (x 4.25, y 1) in a 16 x 16 target; source point (x 9.5, y 1) in a 64 x 16 source,
    # which is working pixel x (9.5 + 0.5) / 64 * 16 - 0.5 = 2.0: b - a = (dy 0, dx 2.25)
    u = pf.normalise(np.array([[9.5, 1, 4.25, 1]]), (16, 64), (16, 16))
    maps_t = tf.constant(maps)
    with tf.GradientTape() as tape:
        tape.watch(maps_t)
        loss = point_loss(maps_t, u, config)
    # A->B flow at column 4.25: 4.25 units (linear in the column, so bilinear is exact) = 8.5 px, error 6.25;
    # B->A flow is 0 where a - b = (0, -2.25) is wanted: error 2.25 (the weight cancels the (256 / S)^2)
    assert float(loss) == pytest.approx(6.25**2 + 2.25**2, rel=1e-5)
    grad = tape.gradient(loss, maps_t).numpy()[0, :, :, 7]
    g = 2 * 6.25 * 2  # dL/d(sampled flow units) = 2 * error * 2 px per unit, split 0.75 / 0.25 between columns 4, 5
    np.testing.assert_allclose(grad[1, 4:6], [0.75 * g, 0.25 * g], rtol=1e-5)
    assert np.count_nonzero(grad) == 2


def test_trainer_guided_steps_plain_and_fused_agree_and_unguided_is_unchanged():
    from diffmorph.config import MorphConfig
    from diffmorph.core.optimise import Trainer

    rng = np.random.default_rng(0)
    a, b = (rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32) for _ in range(2))
    u = pf.normalise(np.array([[5, 5, 20, 10], [25, 20, 12, 25]]), (32, 32), (32, 32))
    losses = {}
    for fast in (True, False):
        trainer = Trainer(a, b, MorphConfig(size=32, seed=3, plain=not fast, point_prior="none"))
        plain = [trainer.step() for _ in range(2)]
        trainer.reset(a, b, 3)
        trainer.set_points(u)
        guided = [trainer.step() for _ in range(2)]
        trainer.reset(a, b, 3)  # reset drops the points
        assert [trainer.step() for _ in range(2)] == plain
        assert guided[0] > plain[0] + 1  # the points are far from the zero-ish initial flow (no prior)
        losses[fast] = guided
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)


# ----------------------------------------------------------------------------- automatic points


def _textured(width, height, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (height // 4, width // 4, 3)).astype(np.uint8)
    image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(25):
        centre = tuple(int(v) for v in rng.integers(0, [width, height]))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(image, centre, int(rng.integers(3, 12)), colour, -1)
    return image


def test_auto_points_on_a_shifted_pair_recover_the_shift():
    from diffmorph.app.points import find_points

    big = _textured(260, 220)
    dx, dy = 23, -11
    source = big[20:200, 30:230]
    target = big[20 - dy : 200 - dy, 30 + dx : 230 + dx]  # target(x, y) = source(x + dx, y - dy)
    pairs = find_points(source, target)
    assert len(pairs) >= 8
    moved = pairs[:, 2:] - pairs[:, :2]  # target - source
    np.testing.assert_allclose(np.median(moved, axis=0), [-dx, dy], atol=0.5)
    assert np.mean(np.all(np.abs(moved - [-dx, dy]) < 1.5, axis=1)) > 0.9
    assert len(np.unique(pairs[:, :2], axis=0)) == len(pairs)


def test_auto_points_on_featureless_images_find_none():
    from diffmorph.app.points import find_points

    flat = np.full((64, 64, 3), 128, np.uint8)
    assert find_points(flat, _textured(64, 64)).shape == (0, 4)


def test_auto_points_are_written_in_the_target_own_pixels():
    from diffmorph.app.points import guide_for

    big = _textured(260, 220, seed=2)
    source = big[20:200, 30:230]  # 200 x 180
    target = big[20:200, 40:240]
    import cv2

    half = cv2.resize(target, (100, 90), interpolation=cv2.INTER_AREA)  # the target given at half size
    guide = guide_for("auto", source, target, target_size=half.shape[:2])
    assert guide is not None and guide.auto and guide.target_size == (90, 100)
    moved = (guide.pixels[:, 2:] + 0.5) * 2 - 0.5 - guide.pixels[:, :2]  # in the source's pixels
    np.testing.assert_allclose(np.median(moved, axis=0), [-10, 0], atol=0.6)


# ----------------------------------------------------------------------------- the pipeline


def _toy_points(tmp_path, rows=((10, 12, 20, 14), (40, 30, 35, 28))):
    path = tmp_path / "pts.csv"
    path.write_text(HEADER + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _morph(out, *extra):
    return run_cli(
        ["-s", TOY_A, "-t", TOY_B, "--size", 32, "-e", 10, "--steps", 3, "--formats", "gif", "-q"]
        + ["--seed", 1, "-o", out, *extra]
    )


def test_guided_morph_writes_points_and_records_them(tmp_path):
    from diffmorph.io import mapsfile

    out = tmp_path / "out"
    points = _toy_points(tmp_path)
    run = _morph(out, "--points", points, "--report")
    assert run.returncode == 0, run.stderr
    morph = out / "morph"
    np.testing.assert_allclose(pf.read_points(morph / "points.csv"), pf.read_points(points))
    drawing = read_rgb(morph / "points.jpg")
    toy = read_rgb(TOY_A)
    assert drawing.shape == (toy.shape[0], 2 * toy.shape[1], 3)
    saved = mapsfile.load_maps(morph / "maps.npz")
    assert saved.meta["points"] == 2 and len(saved.meta["points_sha256"]) == 64
    assert json.loads((morph / "report.json").read_text())["input"]["points"] == 2
    # the same morph without points: other maps, and the points files are retired with the set
    plain = tmp_path / "plain"
    assert _morph(plain).returncode == 0
    assert not (plain / "morph" / "points.csv").exists()
    assert "points" not in mapsfile.load_maps(plain / "morph" / "maps.npz").meta
    assert not np.array_equal(saved.maps_low, mapsfile.load_maps(plain / "morph" / "maps.npz").maps_low)


def test_maps_rerender_needs_no_points_and_keeps_them(tmp_path):
    out = tmp_path / "out"
    assert _morph(out, "--points", _toy_points(tmp_path)).returncode == 0
    before = (out / "morph" / "points.csv").read_bytes()
    run = _morph(out, "--maps", out / "morph" / "maps.npz", "--steps", 4)
    assert run.returncode == 0, run.stderr
    assert (out / "morph" / "points.csv").read_bytes() == before and (out / "morph" / "points.jpg").exists()
    line = assert_one_line_error(_morph(out, "--maps", out / "morph" / "maps.npz", "--points", "auto"), 2)
    assert "--points guides an optimisation" in line


def test_resume_refuses_other_points_unless_forced(tmp_path):
    out = tmp_path / "out"
    first = _toy_points(tmp_path)
    assert _morph(out, "--points", first).returncode == 0
    other = tmp_path / "other.csv"
    other.write_text(HEADER + "1,1,2,2\n")
    needles = ("point pairs: 2 before, 1 now", "(--force continues it")
    assert_one_line_error(_morph(out, "--points", other, "--resume", "-e", 12), 2, *needles)
    assert_one_line_error(_morph(out, "--resume", "-e", 12), 2, "point pairs: 2 before, none now")
    run = _morph(out, "--points", other, "--resume", "--force", "-e", 12)
    assert run.returncode == 0, run.stderr
    assert "diffmorph: --force: resuming with" in run.stderr
    assert _morph(out, "--points", other, "--resume", "-e", 14).returncode == 0  # the same points: fine


@pytest.mark.parametrize(
    "content, needles",
    [
        (HEADER + "1,2,3,4\n1000,2,3,4\n", ["pts.csv row 2", "outside the source image"]),
        ("a,b\n", ["pts.csv", "header"]),
    ],
)
def test_bad_points_on_the_command_line_exit_2_and_write_nothing(tmp_path, content, needles):
    (tmp_path / "pts.csv").write_text(content)
    out = tmp_path / "out"
    assert_one_line_error(_morph(out, "--points", tmp_path / "pts.csv"), 2, *needles)
    assert not out.exists()
    assert_one_line_error(_morph(out, "--points", tmp_path / "missing.csv"), 2, "missing.csv: no such file")
    assert not out.exists()


def test_auto_on_dissimilar_images_is_a_notice_and_an_unguided_morph(tmp_path):
    import cv2

    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.full((48, 48, 3), 90, np.uint8))
    out = tmp_path / "out"
    run = run_cli(
        [
            "-s",
            flat,
            "-t",
            TOY_B,
            "--size",
            32,
            "-e",
            3,
            "--steps",
            2,
            "--formats",
            "gif",
            "-o",
            out,
            "--points",
            "auto",
            "-q",
        ]
    )
    assert run.returncode == 0, run.stderr
    needle = "points auto: no face found in either image; SIFT found 0 reliable pairs (fewer than 4); morphing"
    assert needle in run.stderr and "morphing without points" in run.stderr
    assert not (out / "morph" / "points.csv").exists()


def test_sequence_takes_a_folder_of_points_per_pair(tmp_path):
    from diffmorph.io import mapsfile

    folder = tmp_path / "pts"
    folder.mkdir()
    (folder / "001.json").write_text(json.dumps([{"source": [5, 5], "target": [9, 9]}]))
    out = tmp_path / "show.mp4"
    args = ["sequence", TOY_A, TOY_B, TOY_A, "-o", out, "--size", 32, "-e", 3, "--steps", 2, "--formats", "gif"]
    run = run_cli([*args, "--points", folder, "-q", "--seed", 1])
    assert run.returncode == 0, run.stderr
    work = tmp_path / "show_pairs"
    first, second = sorted(p for p in work.iterdir() if p.is_dir())
    assert "points" not in mapsfile.load_maps(first / "morph" / "maps.npz").meta
    assert mapsfile.load_maps(second / "morph" / "maps.npz").meta["points"] == 1
    assert (second / "morph" / "points.jpg").exists() and not (first / "morph" / "points.csv").exists()
    # other points for the second pair: the first is reused, the second optimised again
    (folder / "001.json").write_text(json.dumps([{"source": [5, 5], "target": [12, 9]}]))
    run = run_cli([*args, "--points", folder, "--seed", 1])
    assert run.returncode == 0, run.stderr
    assert "2 pairs, 1 reused" in run.stderr


def test_api_points_argument_forms(tmp_path):
    import diffmorph

    config = diffmorph.MorphConfig(size=32, train_steps=2, frames=2, seed=1)
    options = diffmorph.OutputOptions(formats=("gif",))
    rows = np.array([[10.0, 12.0, 20.0, 14.0]])
    result = diffmorph.morph(TOY_A, TOY_B, tmp_path / "a", config, points=rows, options=options)
    np.testing.assert_allclose(pf.read_points(result.paths.points_csv), rows)
    with pytest.raises(InputError, match="points: expected shape"):
        diffmorph.morph(TOY_A, TOY_B, tmp_path / "b", config, points=[1, 2, 3, 4], options=options)
    assert not (tmp_path / "b").exists()
    np.testing.assert_array_equal(diffmorph.read_points(HEADER + "1,2,3,4\n"), [[1, 2, 3, 4]])


def test_padded_point_rows_do_not_count_and_adding_a_pair_keeps_the_compiled_shape():
    """The Trainer pads its point pairs to 8, 16, 32... rows (so adding a pair reuses the compiled
    loss); the padding changes neither the loss nor (beyond its last bit) its gradient, eagerly or under XLA."""
    import tensorflow as tf

    from diffmorph.config import MorphConfig
    from diffmorph.core.optimise import Trainer
    from diffmorph.core.points import padded_points, point_capacity, point_loss

    size = 16
    config = MorphConfig(size=size, seed=0)
    rng = np.random.default_rng(5)
    u = rng.uniform(0.05, 0.95, (3, 4)).astype(np.float32)
    maps = tf.constant(rng.normal(0, 0.5, (1, size, size, 16)).astype(np.float32))
    padded = padded_points(u, point_capacity(3))
    assert padded.shape == (8, 4) and (padded[3:] == 0).all()

    def loss_and_grad(points, count):
        with tf.GradientTape() as tape:
            tape.watch(maps)
            loss = point_loss(maps, points, config, count)
        return loss, tape.gradient(loss, maps)

    for run in (loss_and_grad, tf.function(loss_and_grad, jit_compile=True)):
        plain_loss, plain_grad = run(tf.constant(u), None)
        pad_loss, pad_grad = run(tf.constant(padded), tf.constant(3.0))
        assert float(pad_loss) == float(plain_loss)
        # a sum divided by the count instead of a mean: the gradient may differ in its last bit
        np.testing.assert_allclose(pad_grad.numpy(), plain_grad.numpy(), rtol=1e-6, atol=0)

    a = rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    trainer = Trainer(a, a[:, ::-1], config)
    trainer.set_points(u[:2])
    assert trainer.points.numpy().shape == (8, 4) and float(trainer.point_count) == 2
    trainer.set_points(u)  # a new pair: the same shape, so the compiled loss is reused
    assert trainer.points.numpy().shape == (8, 4) and float(trainer.point_count) == 3
    trainer.set_points(np.tile(u, (3, 1)))  # 9 pairs: the next capacity
    assert trainer.points.numpy().shape == (16, 4) and float(trainer.point_count) == 9
    trainer.set_points(None)
    assert not trainer.guided and trainer.points.numpy().shape == (0, 4)


@pytest.mark.slow
def test_guided_morph_records_its_geometry_and_renders_it_again(tmp_path):
    import diffmorph
    from diffmorph.io import mapsfile

    config = diffmorph.MorphConfig(size=32, train_steps=3, frames=3, seed=0)
    options = diffmorph.OutputOptions(formats=("gif",))
    result = diffmorph.morph(TOY_A, TOY_B, tmp_path / "out", config, points=_toy_points(tmp_path), options=options)
    assert (result.config.point_prior, result.config.geometry, result.config.colour_maps) == ("tps", "between", "off")
    saved = mapsfile.load_maps(tmp_path / "out" / "morph" / "maps.npz")
    assert saved.meta["geometry"] == "between" and saved.meta["colour_maps"] == "off"
    assert saved.meta["point_prior"] == "tps" and saved.meta["consistency_weight"] == 100.0
    maps = tmp_path / "out" / "morph" / "maps.npz"
    again = list(diffmorph.render_frames(maps, TOY_A, TOY_B, alphas=[0.5]))[0]
    explicit = config.for_guide(True)
    same = list(diffmorph.render_frames(result.maps_low, TOY_A, TOY_B, explicit, alphas=[0.5]))[0]
    assert np.array_equal(again, same)
    assert np.array_equal(list(diffmorph.render_frames(maps, TOY_A, TOY_B, alphas=[0.0]))[0], read_rgb(TOY_A))
