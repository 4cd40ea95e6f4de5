"""Export: the run's selected model as ONNX, plus the signature all three exports share.

The ONNX graph uses standard ai.onnx operators only (IsNaN/Where to impute, Equal on strings to
one-hot, Sub/Div to scale, MatMul/Add for the model, Mul/Add/Exp to undo the target transform),
all in float64, so any ONNX runtime scores it as `houseprice predict` does. Each trainer's own
export (torch.export, SavedModel) is written by its training task, from its own fit, beside it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import exports, layout, storage
from houseprice.preprocessing import Preprocessor
from houseprice.trainers.common import TrainResult, export_view

if TYPE_CHECKING:
    import onnx

# ONNX 1.16's opset and IR version (Equal on strings needs opset 19): runtimes from 2024 on read
# them, where onnx 1.23's own default IR version (14) would shut out all but the newest.
ONNX_OPSET = 21
ONNX_IR_VERSION = 10


def build_onnx_model(result: TrainResult, prep: Preprocessor) -> onnx.ModelProto:
    """The graph raw columns → price, one 1-D input per feature column, output 'price'."""
    from onnx import TensorProto, checker, helper, numpy_helper

    result, prep = export_view(result, prep)

    nodes, inputs = [], []
    names = exports.input_names(prep)  # identifiers; each input's doc_string is its column

    # Inner names start with "hp/" so that no input can clash with them.
    def constant(name: str, value: np.ndarray) -> str:
        value = numpy_helper.from_array(value)
        nodes.append(helper.make_node("Constant", [], [f"hp/{name}"], value=value))
        return f"hp/{name}"

    def node(op: str, args: list[str], output: str, **attributes) -> str:
        name = output if output == "price" else f"hp/{output}"
        nodes.append(helper.make_node(op, args, [name], **attributes))
        return name

    def add_input(column: str, kind: int) -> str:
        inputs.append(helper.make_tensor_value_info(names[column], kind, ["rows"], column))
        return names[column]

    axis = constant("column_axis", np.array([1], dtype=np.int64))
    blocks = []
    numeric = [add_input(c, TensorProto.DOUBLE) for c in prep.numeric_features]
    if numeric:
        columns = [node("Unsqueeze", [c, axis], f"{c}/2d") for c in numeric]
        numbers = node("Concat", columns, "numbers", axis=1)
        medians = constant("medians", np.array([[prep.medians[c] for c in prep.numeric_features]]))
        missing = node("IsNaN", [numbers], "numbers_missing")
        blocks.append(node("Where", [missing, medians, numbers], "numbers_imputed"))
    for column in prep.categorical_features:
        name = add_input(column, TensorProto.STRING)
        if not prep.levels[column]:
            continue  # only the reference level: no design column
        levels = constant(f"{name}/levels", np.array([prep.levels[column]], dtype=object))
        same = node(
            "Equal", [node("Unsqueeze", [name, axis], f"{name}/2d"), levels], f"{name}/same"
        )
        blocks.append(node("Cast", [same], f"{name}/onehot", to=TensorProto.DOUBLE))
    design = node("Concat", blocks, "design", axis=1)
    centred = node("Sub", [design, constant("means", np.array([prep.means]))], "centred")
    scaled = node("Div", [centred, constant("scales", np.array([prep.scales]))], "scaled")
    weights = constant("weights", np.asarray(result.weights, dtype=np.float64)[:, None])
    product = node("MatMul", [scaled, weights], "product")
    fitted = node("Add", [product, constant("bias", np.array([result.bias]))], "fitted")
    flat = node("Squeeze", [fitted, axis], "fitted_flat")
    spread = node("Mul", [flat, constant("target_scale", np.array(prep.target_scale))], "spread")
    target_mean = constant("target_mean", np.array(prep.price_offset))
    if prep.log_target:
        node("Exp", [node("Add", [spread, target_mean], "log_price")], "price")
    else:
        node("Add", [spread, target_mean], "price")
    output = helper.make_tensor_value_info("price", TensorProto.DOUBLE, ["rows"])
    graph = helper.make_graph(nodes, "houseprice", inputs, [output])
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="houseprice",
        doc_string="Raw feature columns (float64; categories as strings) to price.",
    )
    model.ir_version = ONNX_IR_VERSION
    checker.check_model(model, full_check=True)
    return model


@task(name="export-onnx", cache_policy=NO_CACHE)
def export_onnx(
    run: layout.RunPaths, prep: Preprocessor, results: list[TrainResult], selected: str | None
) -> None:
    """Write the selected model as ONNX and the signature all the exports share."""
    chosen = next((r for r in results if r.framework == selected), None)
    # A trainer's own export, for each trainer whose training task wrote one.
    holders = {r.framework: r.framework for r in results if r.export_file is not None}
    if chosen is None:
        get_run_logger().warning("export: no model was selected, so no ONNX export is written")
    else:
        started = time.perf_counter()
        model = build_onnx_model(chosen, prep)
        storage.write_bytes_atomic(run.onnx_export, model.SerializeToString())
        holders["onnx"] = selected
        get_run_logger().info(
            "export: %s (%s fit) in %.2f s",
            run.onnx_export.name,
            selected,
            time.perf_counter() - started,
        )
    storage.write_json_atomic(run.export_signature, exports.build_signature(prep, holders))
