#!/usr/bin/env python3
"""Train a small iris classifier and export it to ONNX.

Usage: train.py OUTDIR

Writes OUTDIR/model.onnx and OUTDIR/model.json. Uses scikit-learn's bundled
iris data set (no download). Deterministic: fixed split and random_state.
Run in a throwaway venv with scikit-learn, skl2onnx and onnx installed
(images/model-server/build does that).
"""
import json
import os
import sys

import numpy as np
import onnx
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MODEL_NAME = "iris-logreg"
# Opsets that any recent onnxruntime supports; pinned so a newer onnx/skl2onnx
# on the build host does not silently produce a model the runtime rejects.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)

    iris = load_iris()
    X = iris.data.astype(np.float32)
    y = iris.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=42, stratify=y
    )

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0))
    model.fit(X_train, y_train)
    accuracy = float(model.score(X_test, y_test))

    n_features = X.shape[1]
    onx = convert_sklearn(
        model,
        name=MODEL_NAME,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        # Plain [N, n_classes] float tensor instead of a list of dicts (ZipMap).
        options={id(model): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    onx.doc_string = f"{MODEL_NAME}: StandardScaler+LogisticRegression on sklearn iris"
    onnx.checker.check_model(onx)

    model_path = os.path.join(outdir, "model.onnx")
    with open(model_path, "wb") as f:
        f.write(onx.SerializeToString())

    meta = {
        "name": MODEL_NAME,
        "dataset": "iris",
        "feature_names": list(iris.feature_names),
        "class_names": [str(c) for c in iris.target_names],
        "input_name": onx.graph.input[0].name,
        "outputs": [o.name for o in onx.graph.output],
        "test_accuracy": round(accuracy, 4),
        "n_train": int(len(X_train)),
        "n_test": int(len(X_test)),
        "opset": {d.domain or "ai.onnx": d.version for d in onx.opset_import},
        "ir_version": int(onx.ir_version),
        "trained_with": {
            "scikit-learn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
            "numpy": np.__version__,
        },
    }
    with open(os.path.join(outdir, "model.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")

    print(
        f"train: {MODEL_NAME} test_accuracy={accuracy:.4f} "
        f"inputs={meta['input_name']} outputs={meta['outputs']} -> {model_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
