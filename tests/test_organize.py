"""The photo organiser on generated images of every mode and scikit-image's
sample photos; its page checked in a real headless browser (chromium)."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from dec_jax.apps import organize
from dec_jax.errors import DecJaxError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUPS = ("red", "blue", "green")
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera",
                 "coins", "moon", "logo")


def group_image(group: str, i: int) -> Image.Image:
  """Reddish horizontal stripes, bluish vertical stripes or greenish rings
  (in brightness, so greyscale features see them too), with noise; sizes
  differ per image."""
  rng = np.random.default_rng(100 * GROUPS.index(group) + i)
  h, w = 120 + 37 * i, 160 + 23 * i
  yy, xx = np.mgrid[0:h, 0:w] / 12.0
  pattern = {"red": np.sin(yy), "blue": np.sin(xx),
             "green": np.sin(np.hypot(yy - h / 24, xx - w / 24))}[group]
  colour = {"red": (230, 60, 50), "blue": (40, 70, 220),
            "green": (50, 200, 60)}[group]
  pixels = (np.array(colour, float) * (0.55 + 0.4 * pattern)[..., None]
            + rng.normal(0, 10, (h, w, 3)))
  return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_groups(folder, per_group: int = 4) -> dict:
  """per_group images of each group, each saved in another mode / format:
  big RGB jpg, RGBA png, palette png, CMYK jpg, EXIF-rotated jpg. Returns
  {relative path: group}."""
  os.makedirs(folder, exist_ok=True)
  truth = {}
  for group in GROUPS:
    for i in range(per_group):
      img = group_image(group, i)
      kind = i % 5
      name = f"{group}_{i}" + (".png" if kind in (1, 2) else ".jpg")
      path = os.path.join(folder, name)
      if kind == 0:
        img.resize((1600, 1200)).save(path, quality=90)
      elif kind == 1:
        rgba = img.convert("RGBA")
        rgba.putalpha(200)
        rgba.save(path)
      elif kind == 2:
        img.quantize(64).save(path)
      elif kind == 3:
        img.convert("CMYK").save(path, quality=90)
      else:
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees when shown
        img.save(path, exif=exif)
      truth[name] = group
  return truth


@pytest.fixture(scope="module")
def groups_folder(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp("groups"))
  return folder, write_groups(folder, per_group=5)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
  """Generated groups, scikit-image photos (grey, colour, RGBA) in a
  subfolder, a 16-bit png, and files that must be skipped."""
  from skimage import data  # pylint: disable=g-import-not-at-top
  folder = str(tmp_path_factory.mktemp("photos"))
  write_groups(folder, per_group=3)
  os.makedirs(os.path.join(folder, "sample photos"))
  for name in SAMPLE_PHOTOS:
    Image.fromarray(getattr(data, name)()).save(
        os.path.join(folder, "sample photos", f"{name}.png"))
  Image.fromarray((data.camera().astype(np.uint16) * 200)).save(
      os.path.join(folder, "camera16.png"))  # mode I;16
  with open(os.path.join(folder, "red_0.jpg"), "rb") as f:
    head = f.read(2000)
  with open(os.path.join(folder, "truncated.jpg"), "wb") as f:
    f.write(head)
  with open(os.path.join(folder, "not really.png"), "w") as f:
    f.write("plain text")
  with open(os.path.join(folder, "notes.txt"), "w") as f:
    f.write("not an image")
  return folder


def test_read_image_any_mode_gives_small_rgb(photo_folder, groups_folder):
  folder = groups_folder[0]
  paths = [os.path.join(folder, f"red_{i}.{'png' if i in (1, 2) else 'jpg'}")
           for i in range(5)]  # big RGB, RGBA, palette, CMYK, EXIF-rotated
  paths += [os.path.join(photo_folder, rel) for rel in (
      "camera16.png", "sample photos/logo.png", "sample photos/camera.png")]
  for path in paths:
    img = organize.read_image(path)
    assert img.mode == "RGB" and max(img.size) <= organize.SOURCE_SIDE, path
    pixels = np.asarray(img, float)
    if "red_" in path:  # colour survives alpha, palette and CMYK
      assert pixels[..., 0].mean() > pixels[..., 1].mean() + 40, path
  sixteen = np.asarray(organize.read_image(
      os.path.join(photo_folder, "camera16.png")))
  assert 50 < sixteen.mean() < 200  # rescaled, not clipped to white


def test_exif_rotation_is_applied(tmp_path):
  write_groups(str(tmp_path), per_group=5)
  rotated = Image.open(tmp_path / "red_4.jpg")
  assert rotated.size[0] != rotated.size[1]
  shown = organize.read_image(str(tmp_path / "red_4.jpg"), side=1000)
  assert shown.size == rotated.size[::-1]  # turned as the EXIF tag says


def test_unreadable_and_other_files_are_listed_and_skipped(photo_folder):
  photos = organize.load_photos(photo_folder)
  skipped = dict(photos.skipped)
  assert set(skipped) == {"truncated.jpg", "not really.png", "notes.txt"}
  assert skipped["notes.txt"] == "not a jpg or png file"
  assert skipped["truncated.jpg"].startswith("unreadable")
  assert skipped["not really.png"].startswith("unreadable")
  assert len(photos.files) == 9 + len(SAMPLE_PHOTOS) + 1
  assert "sample photos/astronaut.png" in photos.files


@pytest.mark.parametrize("kind", ["pixels", "hog"])
def test_generated_groups_are_recovered(groups_folder, kind):
  folder, truth = groups_folder
  photos = organize.load_photos(folder)
  x = organize.features(photos, kind)
  assert x.shape[0] == len(truth) and np.isfinite(x).all()
  result = organize.cluster(x, 3)
  assert adjusted_rand_score([truth[f] for f in photos.files],
                             result.labels) == 1.0
  assert ((result.confidence > 1 / 3) & (result.confidence <= 1)).all()


def test_k_is_chosen_by_the_silhouette(groups_folder):
  folder, _ = groups_folder
  photos = organize.load_photos(folder)
  result = organize.cluster(organize.features(photos, "pixels"), None,
                            k_max=6)
  assert sorted(result.curve) == [2, 3, 4, 5, 6]
  assert result.k == 3 == max(result.curve, key=result.curve.get)


def test_embedding_files_by_name_and_by_order(groups_folder, tmp_path):
  folder, truth = groups_folder
  names = sorted(truth)
  onehot = np.eye(3)[[GROUPS.index(truth[n]) for n in names]]
  x = (onehot * 5 + np.random.default_rng(0).normal(0, 0.1, onehot.shape))
  np.save(tmp_path / "e.npy", x)
  shuffled = np.random.default_rng(1).permutation(len(names))
  np.savez(tmp_path / "e.npz", x=x[shuffled],
           files=np.array(names)[shuffled])
  with open(tmp_path / "e.csv", "w") as f:
    f.write("file,a,b,c\n")
    for i in shuffled:
      f.write(f"{names[i]}," + ",".join(map(str, x[i])) + "\n")
  photos = organize.load_photos(folder)
  for ext in ("npy", "npz", "csv"):
    rows = organize.features(photos, "embedding", str(tmp_path / f"e.{ext}"))
    np.testing.assert_allclose(rows, x, rtol=1e-6, err_msg=ext)
  np.save(tmp_path / "short.npy", x[:-1])
  with pytest.raises(DecJaxError, match="one row per jpg/png"):
    organize.features(photos, "embedding", str(tmp_path / "short.npy"))
  np.savez(tmp_path / "missing.npz", x=x[1:], files=np.array(names[1:]))
  with pytest.raises(DecJaxError, match="no features for 1 image"):
    organize.features(photos, "embedding", str(tmp_path / "missing.npz"))


def test_bad_input_is_refused(tmp_path, groups_folder):
  with pytest.raises(DecJaxError, match="does not exist"):
    organize.organize(str(tmp_path / "nowhere"), str(tmp_path / "out"))
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "a.txt").write_text("x")
  with pytest.raises(DecJaxError, match="0 readable"):
    organize.organize(str(tmp_path / "empty"), str(tmp_path / "out"))
  (tmp_path / "busy").mkdir()
  (tmp_path / "busy" / "mine.doc").write_text("x")
  with pytest.raises(DecJaxError, match="not an earlier gallery"):
    organize.organize(groups_folder[0], str(tmp_path / "busy"))
  with pytest.raises(DecJaxError, match="between 2 and"):
    organize.organize(groups_folder[0], str(tmp_path / "out"), 99)


@pytest.mark.parametrize("options, message", [
    ({"n_clusters": 99}, "between 2 and"),
    ({"n_clusters": 99, "method": "dec"}, "between 2 and"),
    ({"k_min": 20}, "cannot choose k"),
    ({"seed": -1}, "seed must be an integer"),
])
def test_bad_k_or_seed_is_refused_before_out_is_made(tmp_path, groups_folder,
                                                     options, message):
  out = tmp_path / "out"
  with pytest.raises(DecJaxError, match=message):
    organize.organize(groups_folder[0], str(out), **options)
  assert not out.exists()


def test_an_unknown_method_is_refused_before_the_photos_are_read(
    tmp_path, groups_folder, monkeypatch):
  def unread(*args, **kwargs):
    raise AssertionError("the photos were read")
  monkeypatch.setattr(organize, "load_photos", unread)
  with pytest.raises(DecJaxError, match="Unknown method 'nope'"):
    organize.organize(groups_folder[0], str(tmp_path / "out"), method="nope")


@pytest.mark.parametrize("name", ["e.npz", "e.npy"])
def test_an_embedding_file_that_is_not_numpy_is_named(tmp_path, groups_folder,
                                                      name):
  path = tmp_path / name
  path.write_bytes(np.random.default_rng(0).bytes(500))
  with pytest.raises(DecJaxError, match=r"not a valid \.np[yz] file"):
    organize.organize(groups_folder[0], str(tmp_path / "out"),
                      feature_kind="embedding", embedding=str(path))
  assert not (tmp_path / "out").exists()


def test_dec_on_the_features(groups_folder, tmp_path):
  """The wiring of method=dec (15 images are too few for DEC to matter):
  the run's own files, its labels and max q are what the gallery uses."""
  folder, truth = groups_folder
  photos = organize.load_photos(folder)
  x = organize.features(photos, "pixels")
  workdir = tmp_path / "run"
  result = organize.cluster(x, 3, method="dec", workdir=str(workdir),
                            dec_epochs=5, dec_dims=(16, 3))
  assert json.loads((workdir / "results.json").read_text())["method"] == "dec"
  with np.load(workdir / "assignments.npz") as saved:
    np.testing.assert_array_equal(result.labels, saved["labels"])
    np.testing.assert_allclose(result.confidence, saved["q"].max(axis=1))
  assert result.labels.shape == (len(truth),) and result.k == 3


# ------------------------------------------------------ the page, in chromium

_CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  const pre = document.createElement('pre');
  pre.id = 'check';
  pre.textContent = JSON.stringify({
    images: [...document.images].map(i => ({
      src: i.getAttribute('src'), file: i.dataset.file || null,
      width: i.naturalWidth,
      cluster: i.closest('section') ? i.closest('section').dataset.cluster
                                    : null})),
    sections: [...document.querySelectorAll('section.cluster')].map(
        s => [s.dataset.cluster, +s.dataset.size])});
  document.body.appendChild(pre);
});
</script>"""


def render_in_chromium(page: str) -> dict:
  """Loads `page` (with a checking script added) in headless chromium and
  returns what the script saw: every image's naturalWidth and section."""
  chromium = shutil.which("chromium") or shutil.which("chromium-browser")
  if chromium is None:
    pytest.skip("chromium is not installed (.ci/run installs it with apt-get)")
  with open(page, encoding="utf-8") as f:
    text = f.read()
  check = os.path.join(os.path.dirname(page), "_check.html")
  with open(check, "w", encoding="utf-8") as f:
    f.write(text.replace("</body>", _CHECK_SCRIPT + "</body>"))
  profile = os.path.join(os.path.dirname(page), "_chromium_profile")
  proc = subprocess.run(
      [chromium, "--headless", "--no-sandbox", "--disable-gpu",
       f"--user-data-dir={profile}", "--virtual-time-budget=10000",
       "--dump-dom", "file://" + os.path.abspath(check)],
      capture_output=True, text=True, timeout=120, check=False)
  found = re.search(r'<pre id="check">(.*?)</pre>', proc.stdout, re.S)
  assert found, f"chromium did not render the page: {proc.stderr[-2000:]}"
  import html  # pylint: disable=g-import-not-at-top
  return json.loads(html.unescape(found.group(1)))


def test_cli_gallery_loads_in_a_browser(photo_folder, tmp_path):
  out = str(tmp_path / "gallery")
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.organize", f"--images={photo_folder}",
       f"--out={out}", "--features=hog", "--k_max=6", "--folders=link"],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
      env={**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "skipped notes.txt: not a jpg or png file" in proc.stdout
  with open(os.path.join(out, "assignments.csv"), newline="") as f:
    rows = list(csv.DictReader(f))
  n_photos = 9 + len(SAMPLE_PHOTOS) + 1
  assert len(rows) == n_photos
  assert {r["file"] for r in rows} == set(
      organize.load_photos(photo_folder).files)
  seen = render_in_chromium(os.path.join(out, "index.html"))
  thumbs = [i for i in seen["images"] if i["file"]]
  assert len(thumbs) == n_photos
  broken = [i["src"] for i in seen["images"] if i["width"] == 0]
  assert not broken, f"images that did not decode: {broken}"
  assert any(i["src"] == "choose_k.png" for i in seen["images"])
  assert {i["file"]: int(i["cluster"]) for i in thumbs} == {
      r["file"]: int(r["cluster"]) for r in rows}
  counts = {}
  for r in rows:
    counts[r["cluster"]] = counts.get(r["cluster"], 0) + 1
  assert dict(seen["sections"]) == counts
  for c, size in seen["sections"]:  # thumbnails by decreasing confidence
    conf = [float(r["confidence"]) for r in rows if r["cluster"] == c]
    order = [i["file"] for i in thumbs if i["cluster"] == c]
    by_file = {r["file"]: float(r["confidence"]) for r in rows}
    assert [by_file[f] for f in order] == sorted(conf, reverse=True)
    links = os.listdir(os.path.join(out, "clusters", f"cluster_{int(c):02d}"))
    assert len(links) == size
  link = os.path.join(out, "clusters", "cluster_{:02d}".format(
      int(rows[0]["cluster"])), rows[0]["file"].replace("/", "__"))
  assert os.path.islink(link) and os.path.exists(link)


def test_copies_per_cluster_and_a_rerun_into_the_same_gallery(groups_folder,
                                                              tmp_path):
  folder, truth = groups_folder
  out = str(tmp_path / "gallery")
  for _ in range(2):  # an earlier gallery is replaced, not refused
    photos, result = organize.organize(folder, out, 3, folders="copy")
  copies = [os.path.join(root, f) for root, _, files in
            os.walk(os.path.join(out, "clusters")) for f in files]
  assert len(copies) == len(truth) == len(photos.files)
  assert not any(os.path.islink(c) for c in copies)
  for i, rel in enumerate(photos.files):
    copy = os.path.join(out, "clusters", f"cluster_{result.labels[i]:02d}",
                        rel)
    with open(copy, "rb") as a, open(os.path.join(folder, rel), "rb") as b:
      assert a.read() == b.read()
  assert len(os.listdir(os.path.join(out, "thumbs"))) == len(truth)


def test_colliding_flat_names_and_a_rerun_leaves_nothing_stale(tmp_path):
  """`a/b.png` and `a__b.png` flatten to one name: both are kept. A rerun
  with a given k and no folders removes the earlier k curve and folders."""
  folder = str(tmp_path / "photos")
  truth = write_groups(folder, per_group=3)
  os.makedirs(os.path.join(folder, "a"))
  colour = Image.new("RGB", (32, 32), (200, 30, 30))
  colour.save(os.path.join(folder, "a", "b.png"))
  colour.save(os.path.join(folder, "a__b.png"))
  out = str(tmp_path / "gallery")
  photos, _ = organize.organize(folder, out, folders="link", k_max=4)
  links = [f for _, _, files in os.walk(os.path.join(out, "clusters"))
           for f in files]
  assert len(links) == len(photos.files) == len(truth) + 2
  assert os.path.exists(os.path.join(out, "choose_k.png"))
  organize.organize(folder, out, 3)
  assert not os.path.exists(os.path.join(out, "clusters"))
  assert not os.path.exists(os.path.join(out, "choose_k.png"))
