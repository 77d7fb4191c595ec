"""A synthetic clinic for demos, tests and benchmarks: touches of wire format v1."""

from journey.demo.generator import DEFAULT_START, MSK, generate_clinic, write_jsonl

__all__ = ["DEFAULT_START", "MSK", "generate_clinic", "write_jsonl"]
