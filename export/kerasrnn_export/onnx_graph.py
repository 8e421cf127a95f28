"""ONNX step models: the opset every graph is built for, and the model around a family's graph."""
OPSET = 13        # onnxruntime >= 1.6 (its compatibility table); IR version 7 for the same reason
IR_VERSION = 7


def serialized(graph):
    """The checked, serialized ONNX model of `graph` (an onnx.helper graph) at OPSET and IR_VERSION."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kerasrnn")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()
