"""Writes small hub snapshots of the twelve VQA benchmarks in the lmms-lab parquet layouts.

Each benchmark's rows go through the real `datasets` package with the public repository's
Features (its dataset card's `dataset_info`: `Image()` columns, sequences, int64 ids), into the
files `huggingface-cli download --repo-type dataset <repo>` leaves: `data/<split>-NNNNN-of-NNNNN.parquet`,
`<config>/<split>-...` or MMStar's single `mmstar.parquet`. A few broken snapshots (a missing
column, a missing shard, zstd compression) come too. The TypeScript loader test
(test/integration/vqa-hub-parquet.test.ts) runs this with the project's venv and reads them back.

Usage: python lmms_lab_parquet.py <out-dir>; prints {"<snapshot>/<file>": [[image sha256, ...] per row]}.
"""

import hashlib
import io
import json
import sys
from pathlib import Path

import datasets
import pyarrow.parquet as pq
from datasets import Features, Image, Sequence, Value
from PIL import Image as PILImage


def image(seed: int, fmt: str = "PNG") -> dict:
    """A small distinct image, encoded, as an `Image()` cell ({bytes, path}) of a hub file."""
    pic = PILImage.new("RGB", (8, 6), ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    buf = io.BytesIO()
    pic.save(buf, format=fmt)
    return {"bytes": buf.getvalue(), "path": f"{seed}.{fmt.lower()}"}


S = Value("string")
SHAS: dict[str, list[list[str]]] = {}


def write(out: Path, snapshot: str, relpath: str, features: Features, rows: list[dict], compression: str | None = None) -> None:
    """Writes `rows` as `<out>/<snapshot>/<relpath>` through datasets, one row group per row.

    datasets picks the codecs itself (snappy; images uncompressed); another `compression` writes
    the same Arrow table (and its Features metadata) with pyarrow, as older or other writers do.
    """
    columns = {name: [row.get(name) for row in rows] for name in features}
    ds = datasets.Dataset.from_dict(columns, features=features)
    target = out / snapshot / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    if compression is None:
        ds.to_parquet(str(target), batch_size=1)
    else:
        pq.write_table(ds.data.table, str(target), compression=compression, row_group_size=1)
    images = [name for name, feature in features.items() if isinstance(feature, Image)]
    SHAS.setdefault(f"{snapshot}/{relpath}", []).extend(
        [hashlib.sha256(row[name]["bytes"]).hexdigest() for name in images if row.get(name)] for row in rows
    )


MMMU = Features(
    {
        "id": S, "question": S, "options": S, "explanation": S,
        **{f"image_{i}": Image() for i in range(1, 8)},
        "img_type": S, "answer": S, "topic_difficulty": S, "question_type": S, "subfield": S,
    }
)
MMSTAR = Features(
    {
        "index": Value("int64"), "question": S, "image": Image(), "answer": S, "category": S, "l2_category": S,
        "meta_info": {"source": S, "split": S, "image_path": S},
    }
)
MME = Features({"question_id": S, "image": Image(), "question": S, "answer": S, "category": S})
OCRBENCH = Features({"dataset": S, "question": S, "question_type": S, "answer": Sequence(S), "image": Image()})


def mmbench(index_type: str) -> Features:
    """lmms-lab/MMBench: `index` is a string in config en, an int64 in cn."""
    return Features(
        {
            "index": Value(index_type), "question": S, "hint": S, "answer": S, "A": S, "B": S, "C": S, "D": S,
            "category": S, "image": Image(), "source": S, "L2-category": S, "comment": S, "split": S,
        }
    )


TEXTVQA = Features(
    {
        "image_id": S, "question_id": Value("int32"), "question": S, "question_tokens": Sequence(S), "image": Image(),
        "image_width": Value("int32"), "image_height": Value("int32"), "flickr_original_url": S, "flickr_300k_url": S,
        "answers": Sequence(S), "image_classes": Sequence(S), "set_name": S, "ocr_tokens": Sequence(S),
    }
)
DOCVQA = Features(
    {
        "questionId": S, "question": S, "question_types": Sequence(S), "image": Image(), "docId": Value("int64"),
        "ucsf_document_id": S, "ucsf_document_page_no": S, "answers": Sequence(S), "data_split": S,
    }
)
INFOVQA = Features(
    {
        "questionId": S, "question": S, "answers": Sequence(S), "answer_type": Sequence(S), "image": Image(),
        "image_url": S, "operation/reasoning": Sequence(S), "ocr": S, "data_split": S,
    }
)
AI2D = Features({"question": S, "options": Sequence(S), "answer": S, "image": Image()})
CHARTQA = Features({"type": S, "question": S, "answer": S, "image": Image()})
REALWORLDQA = Features({"question": S, "answer": S, "image": Image()})

RWQA_ROWS = [
    {
        "question": "Which way does the road turn?\nA. Left\nB. Straight\nC. Right\n"
        "Please answer directly with only the letter of the correct option and nothing else.",
        "answer": "A",
        "image": image(90, "JPEG"),
    },
    {"question": "How many cars are there? Please answer directly with a single word or number.", "answer": "3", "image": image(91)},
]


def main(out: Path) -> None:
    write(out, "mmmu", "data/validation-00000-of-00001.parquet", MMMU, [
        {
            "id": "validation_Art_Theory_1", "question": "Which painting, <image 1> or <image 2>, is older?",
            "options": "['The first', 'The second', \"Neither's\"]", "explanation": "", "image_1": image(1, "JPEG"),
            "image_2": image(2), "img_type": "['Paintings']", "answer": "A", "topic_difficulty": "Easy",
            "question_type": "multiple-choice", "subfield": "Art History",
        },
        {
            "id": "validation_Math_2", "question": "How many sides does the shape in <image 1> have?", "options": "[]",
            "explanation": "", "image_1": image(3), "img_type": "['Diagrams']", "answer": "6",
            "topic_difficulty": "Medium", "question_type": "open", "subfield": "Geometry",
        },
    ])
    # The dev split (few-shot examples) beside it is not MMMU (val).
    write(out, "mmmu", "data/dev-00000-of-00001.parquet", MMMU, [
        {"id": "dev_Art_1", "question": "A dev example?", "options": "[]", "image_1": image(4), "answer": "x", "question_type": "open"},
    ])
    write(out, "mmstar", "mmstar.parquet", MMSTAR, [
        {
            "index": 0, "question": "Which option describe the object relationship in the image correctly?\n"
            "Options: A: The suitcase is on the book., B: The suitcase is beneath the cat., "
            "C: The suitcase is beneath the bed., D: The suitcase is beneath the book.",
            "image": image(10), "answer": "A", "category": "coarse perception", "l2_category": "image scene and topic",
            "meta_info": {"source": "MMBench", "split": "val", "image_path": "images/0.jpg"},
        },
        {
            "index": 1, "question": "What is the main color of the car?\nOptions: A: red, B: blue, C: green, D: white",
            "image": image(11, "JPEG"), "answer": "B", "category": "fine-grained perception", "l2_category": "attribute & celebrity recognition",
            "meta_info": {"source": "SEEDBench", "split": "val", "image_path": "images/1.jpg"},
        },
    ])
    # Two shards named as lmms-lab/MME's are (a content hash after the shard count).
    write(out, "mme", "data/test-00000-of-00002-a25dbe3b44c4fda6.parquet", MME, [
        {"question_id": "code_reasoning/0020.png", "image": image(20), "question": "Is a c++ code shown in the picture? Please answer yes or no.", "answer": "Yes", "category": "code_reasoning"},
        {"question_id": "code_reasoning/0020.png", "image": image(20), "question": "Is a python code shown in the picture? Please answer yes or no.", "answer": "No", "category": "code_reasoning"},
    ])
    write(out, "mme", "data/test-00001-of-00002-7d22c7f1aba6fca4.parquet", MME, [
        {"question_id": "existence/000000006040.jpg", "image": image(21, "JPEG"), "question": "Is there a train in this image? Please answer yes or no.", "answer": "Yes", "category": "existence"},
    ])
    write(out, "ocrbench", "data/test-00000-of-00001.parquet", OCRBENCH, [
        {"dataset": "IIIT5K", "question": "what is written in the image?", "question_type": "Regular Text Recognition", "answer": ["CHAIN"], "image": image(30)},
        {
            "dataset": "HME100k", "question": "Please write out the expression of the formula in the image using LaTeX format.",
            "question_type": "Handwritten Mathematical Expression Recognition", "answer": ["x ^ { 2 } \n + 1", "\\frac { a } { b }"], "image": image(31),
        },
    ])
    # One repository, two configs: both MMBench languages read this snapshot.
    for config, lang, index_type, rows in [
        ("en", "en", "string", [("241", "Which animal is it?", None), ("1000241", "Which animal is it?", None), ("242", "What mood is shown?", "The people are at a party.")]),
        ("cn", "cn", "int64", [(7, "哪种动物？", None)]),
    ]:
        options = [("cat", "dog", "bird", None), ("dog", "bird", "cat", None), ("happy", "sad", "angry", "calm")]
        answers = ["A", "C", "A"]
        write(out, "mmbench", f"{config}/dev-00000-of-00001.parquet", mmbench(index_type), [
            {
                "index": index if index_type == "string" else int(index), "question": question, "hint": hint, "answer": answers[k],
                "A": options[k][0], "B": options[k][1], "C": options[k][2], "D": options[k][3],
                "category": "image_emotion" if k == 2 else "object_localization", "image": image(40 + (k % 2)), "source": "MMBench",
                "L2-category": "coarse_perception", "comment": None, "split": "dev",
            }
            for k, (index, question, hint) in enumerate(rows)
        ])
        write(out, "mmbench", f"{config}/test-00000-of-00001.parquet", mmbench(index_type), [
            {"index": "9" if index_type == "string" else 9, "question": f"A {lang} test question?", "answer": None, "A": "x", "B": "y", "image": image(49)},
        ])
    write(out, "textvqa", "data/validation-00000-of-00001.parquet", TEXTVQA, [
        {
            "image_id": "003a8ae2ef43b901", "question_id": 34602, "question": "what is the brand of this camera?",
            "question_tokens": ["what", "is", "the", "brand", "of", "this", "camera"], "image": image(50, "JPEG"),
            "image_width": 1024, "image_height": 664, "flickr_original_url": "", "flickr_300k_url": "",
            "answers": ["nous les gosses", "dakota", "clos culombu", "dakota digital", "dakota", "dakota", "dakota digital", "dakota digital", "dakota", "dakota"],
            "image_classes": ["Camera"], "set_name": "val", "ocr_tokens": ["DAKOTA", "DIGITAL"],
        },
    ])
    write(out, "docvqa", "DocVQA/validation-00000-of-00001.parquet", DOCVQA, [
        {
            "questionId": "49153", "question": "What is the ‘actual’ value per 1000, during the year 1975?", "question_types": ["figure/diagram"],
            "image": image(60), "docId": 14465, "ucsf_document_id": "pybv0228", "ucsf_document_page_no": "81",
            "answers": ["0.28"], "data_split": "val",
        },
    ])
    write(out, "docvqa", "InfographicVQA/validation-00000-of-00001.parquet", INFOVQA, [
        {
            "questionId": "98313", "question": "Which social platform has heavy female audience?", "answers": ["pinterest"],
            "answer_type": ["single span"], "image": image(61, "JPEG"), "image_url": "", "operation/reasoning": [], "ocr": "", "data_split": "val",
        },
    ])
    write(out, "ai2d", "data/test-00000-of-00001.parquet", AI2D, [
        {"question": "Which stage comes after the egg?", "options": ["adult", "larva", "pupa", "egg"], "answer": "1", "image": image(70)},
    ])
    write(out, "chartqa", "data/test-00000-of-00001.parquet", CHARTQA, [
        {"type": "human_test", "question": "How many food item is shown in the bar graph?", "answer": "14", "image": image(80)},
        {"type": "augmented_test", "question": "What is the value of the largest bar?", "answer": "42.5", "image": image(81)},
    ])
    write(out, "realworldqa", "data/test-00000-of-00001.parquet", REALWORLDQA, RWQA_ROWS)

    # What a loader must refuse or cope with.
    write(out, "broken-columns", "data/test-00000-of-00001.parquet", Features({"question": S, "image": Image()}), [{"question": "Highest?", "image": image(92)}])
    write(out, "broken-cells", "data/test-00000-of-00001.parquet", AI2D, [
        {"question": "Which part is the leaf?", "options": ["A", "B"], "answer": "0", "image": image(93)},
        {"question": "Which part is the root?", "options": ["A", "B"], "answer": "9", "image": image(94)},
    ])
    write(out, "broken-shards", "data/test-00001-of-00002.parquet", REALWORLDQA, RWQA_ROWS[:1])
    write(out, "zstd", "data/test-00000-of-00001.parquet", REALWORLDQA, RWQA_ROWS, compression="zstd")
    write(out, "gzip", "data/test-00000-of-00001.parquet", REALWORLDQA, RWQA_ROWS, compression="gzip")
    print(json.dumps(SHAS))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
