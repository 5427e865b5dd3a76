"""What serving_default does with a request: checks on the ops it runs that predict failures or wrong numbers.

These models load and serve; the trouble shows at predict time: a graph that decodes base64 the server
already decoded, a graph that wants serialized tf.Example protos while JSON clients send feature dicts, or
a graph exported in training mode (Dropout active, BatchNormalization updating its statistics).
"""

from __future__ import annotations

from typing import Any

from sandbox.artifacts import tfproto
from sandbox.artifacts.tf_graph import GraphWalker, OpUse
from sandbox.diagnostics import Diagnostic, make

PARSING_OPS = {
    "ParseExample",
    "ParseExampleV2",
    "ParseSingleExample",
    "ParseSequenceExample",
    "ParseSequenceExampleV2",
    "ParseSingleSequenceExample",
}
"""Ops that read serialized tf.Example / tf.SequenceExample protos."""

RANDOM_OPS = {
    "RandomUniform",
    "RandomUniformInt",
    "RandomStandardNormal",
    "TruncatedNormal",
    "ParameterizedTruncatedNormal",
    "RandomGamma",
    "RandomPoisson",
    "RandomPoissonV2",
    "RandomShuffle",
    "Multinomial",
    "StatelessRandomUniform",
    "StatelessRandomUniformV2",
    "StatelessRandomUniformInt",
    "StatelessRandomUniformIntV2",
    "StatelessRandomUniformFullInt",
    "StatelessRandomUniformFullIntV2",
    "StatelessRandomNormal",
    "StatelessRandomNormalV2",
    "StatelessTruncatedNormal",
    "StatelessTruncatedNormalV2",
    "StatelessMultinomial",
    "StatefulUniform",
    "StatefulUniformInt",
    "StatefulUniformFullInt",
    "StatefulStandardNormalV2",
    "StatefulTruncatedNormal",
}
"""Ops that draw random numbers (Dropout and noise layers use them in training mode)."""

VARIABLE_WRITES = {"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp", "Assign", "AssignAdd", "AssignSub"}
FUSED_BATCH_NORM = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}
_TRUE = tfproto.message_class("AttrValue")(b=True).SerializeToString(deterministic=True)


def check_serving_behaviour(mg: Any, walker: GraphWalker) -> list[Diagnostic]:
    """Diagnostics for what serving_default's graph does at predict time."""
    sig = mg.signature_def.get("serving_default", None)
    if sig is None:
        return []
    served = walker.upstream(o.name for o in sig.outputs.values())
    uses = walker.uses(served)
    string_inputs = sorted(k for k, v in sig.inputs.items() if v.dtype == tfproto.DT_STRING)
    out: list[Diagnostic] = []
    if string_inputs:
        out += _double_base64(uses)
        out += _parsing_signature(walker, served, string_inputs)
    out += _training_mode(uses)
    return out


def _double_base64(uses: list[OpUse]) -> list[Diagnostic]:
    if not any(u.op == "DecodeBase64" for u in uses):
        return []
    return [
        make(
            "tf.double-base64",
            "serving_default takes a DT_STRING input and runs DecodeBase64: the server "
            'already decoded {"b64": ...} values, so the graph decodes twice (\'Invalid character found in '
            "base64')",
            path="serving_default",
        )
    ]


def _parsing_signature(walker: GraphWalker, served: list[Any], string_inputs: list[str]) -> list[Diagnostic]:
    parses = walker.string_constants_feeding(served, PARSING_OPS)
    if not parses:
        return []
    op = parses[0][0]
    features = sorted({s for _, _, strings in parses for s in strings if s})
    named = f" (features {', '.join(features[:6])}{', ...' if len(features) > 6 else ''})" if features else ""
    example = features[0] if features else "<feature>"
    return [
        make(
            "tf.parsing-signature",
            f"serving_default parses serialized tf.Example protos: input '{string_inputs[0]}' (DT_STRING) feeds "
            f"{op}{named}. A JSON client that sends features gets 'JSON object: does not have named input: "
            f"{example}'",
            path="serving_default",
        )
    ]


def _training_mode(uses: list[OpUse]) -> list[Diagnostic]:
    evidence: list[str] = []
    random = sorted({u.op for u in uses if u.op in RANDOM_OPS})
    if random:
        evidence.append(f"it draws random numbers ({', '.join(random)}), so identical requests get different answers")
    if any(u.op in FUSED_BATCH_NORM and u.attrs.get("is_training", _TRUE) == _TRUE for u in uses):
        evidence.append("batch normalization runs with is_training=true, normalizing by each request's own batch")
    writes = sorted({u.op for u in uses if u.op in VARIABLE_WRITES})
    if writes:
        evidence.append(f"every request writes model variables ({', '.join(writes)}), e.g. moving statistics")
    if not evidence:
        return []
    return [
        make(
            "tf.training-mode",
            "serving_default looks exported in training mode: " + "; ".join(evidence),
            path="serving_default",
        )
    ]
