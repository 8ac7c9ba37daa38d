"""JSON schemas of ``CompareReport.to_json()`` and ``AuditReport.to_json()`` (the output of
``attrkit compare --format json`` and ``attrkit audit --format json``), written from the
documented report fields."""

from __future__ import annotations

from typing import Any

_STATUS = {"enum": ["ok", "missed", "wrong", "crash"]}

_COUNTS = {
    "type": "object",
    "required": ["ok", "missed", "wrong", "crash"],
    "additionalProperties": False,
    "properties": {
        status: {"type": "integer", "minimum": 0} for status in ("ok", "missed", "wrong", "crash")
    },
}

_VERDICT = {
    "type": "object",
    "required": ["status", "issue", "reason", "only_for"],
    "additionalProperties": False,
    "properties": {
        "status": _STATUS,
        "issue": {
            "enum": [
                "",
                "functional",
                "created_in_forward",
                "input_used_elsewhere",
                "reused_interleaved",
                "input_without_grad",
                "inplace_on_input",
                "inside_function",
                "under_transform",
                "under_transform_crash",
            ]
        },
        "reason": {"type": "string"},
        "only_for": {
            "type": "array",
            "items": {"enum": ["deconvolution", "guided_backprop"]},
        },
    },
}

_ACTIVATIONS = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["index", "location", "name", "file", "line"],
        "properties": {
            "index": {"type": "integer", "minimum": 0},
            "location": {"type": "string"},
            "name": {"type": "string"},
            "file": {"type": "string"},
            "line": {"type": "integer"},
        },
    },
}

AUDIT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["model", "summary", "relus", "activations", "lookalikes", "counts"],
    "additionalProperties": False,
    "properties": {
        "model": {"type": "string"},
        "summary": {"type": "string", "minLength": 1},
        "relus": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "index",
                    "location",
                    "form",
                    "spelling",
                    "file",
                    "line",
                    "inplace",
                    "applications",
                    "call_sites",
                    "input_used_elsewhere",
                    "input_requires_grad",
                    "input_is_model_input",
                    "on_gradient_path",
                    "captum",
                    "zennit",
                    "inside",
                    "under_transform",
                ],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "location": {"type": "string", "minLength": 1},
                    "form": {"enum": ["module", "created_in_forward", "functional"]},
                    "spelling": {"type": "string", "minLength": 1},
                    "file": {"type": "string"},
                    "line": {"type": "integer", "minimum": 0},
                    "inplace": {"type": "boolean"},
                    "applications": {"type": "integer", "minimum": 1},
                    "call_sites": {"type": "integer", "minimum": 1},
                    "input_used_elsewhere": {"type": "integer", "minimum": 0},
                    "input_requires_grad": {"type": "boolean"},
                    "input_is_model_input": {"type": "boolean"},
                    "on_gradient_path": {"type": "boolean"},
                    "captum": _VERDICT,
                    "zennit": _VERDICT,
                    "inside": {"type": "string"},
                    "under_transform": {"type": "boolean"},
                },
            },
        },
        "activations": _ACTIVATIONS,
        "lookalikes": _ACTIVATIONS,
        "counts": {
            "type": "object",
            "required": ["captum", "zennit"],
            "additionalProperties": False,
            "properties": {"captum": _COUNTS, "zennit": _COUNTS},
        },
    },
}

_LIBRARY = {"enum": ["attrkit", "captum", "zennit"]}

COMPARE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "method",
        "display_name",
        "model",
        "input_shapes",
        "target",
        "seed",
        "top_k",
        "tolerances",
        "agree",
        "runs",
        "pairs",
        "audit_summary",
        "audit",
    ],
    "properties": {
        "method": {"type": "string"},
        "display_name": {"type": "string"},
        "model": {"type": "string"},
        "input_shapes": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        },
        "target": {"type": "string"},
        "seed": {"type": "integer"},
        "top_k": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "tolerances": {
            "type": "object",
            "additionalProperties": False,
            "required": ["rtol", "atol", "stochastic_cosine"],
            "properties": {
                "rtol": {"type": "number", "minimum": 0},
                "atol": {"type": "number", "minimum": 0},
                "stochastic_cosine": {"type": "number", "minimum": 0},
            },
        },
        "agree": {"type": "boolean"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "library",
                    "status",
                    "seconds",
                    "reason",
                    "stochastic",
                    "deviation",
                    "explanation",
                ],
                "properties": {
                    "library": _LIBRARY,
                    "status": {"enum": ["ok", "unavailable", "error"]},
                    "seconds": {"type": ["number", "null"], "minimum": 0},
                    "reason": {"type": "string"},
                    "stochastic": {"type": "string"},
                    "deviation": {"type": "string"},
                    "explanation": {"type": "string"},
                },
            },
        },
        "pairs": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "first",
                    "second",
                    "verdict",
                    "stochastic",
                    "explanation",
                    "tensors",
                ],
                "properties": {
                    "first": _LIBRARY,
                    "second": _LIBRARY,
                    "verdict": {"enum": ["agree", "differ"]},
                    "stochastic": {"type": "boolean"},
                    "explanation": {"type": "string"},
                    "tensors": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": [
                                "index",
                                "shape",
                                "max_abs_difference",
                                "relative_l2_error",
                                "cosine_similarity",
                                "spearman",
                                "top_k_overlap",
                                "shape_mismatch",
                            ],
                            "properties": {
                                "index": {"type": "integer", "minimum": 0},
                                "shape": {"type": "array", "items": {"type": "integer"}},
                                "max_abs_difference": {"type": ["number", "null"], "minimum": 0},
                                "relative_l2_error": {
                                    "type": ["number", "null"],
                                    "minimum": 0,
                                    "maximum": 2,
                                },
                                "cosine_similarity": {
                                    "type": ["number", "null"],
                                    "minimum": -1.000001,
                                    "maximum": 1.000001,
                                },
                                "spearman": {
                                    "type": ["number", "null"],
                                    "minimum": -1.000001,
                                    "maximum": 1.000001,
                                },
                                "top_k_overlap": {
                                    "type": ["number", "null"],
                                    "minimum": 0,
                                    "maximum": 1,
                                },
                                "shape_mismatch": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
        "audit_summary": {"type": "string"},
        "audit": {
            "oneOf": [
                {"type": "null"},
                {k: v for k, v in AUDIT_SCHEMA.items() if k != "$schema"},
            ]
        },
    },
}
