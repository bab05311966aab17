"""The RAG answer pipeline: grounded, cited answers, or an honest abstention."""

from sovrag.answer.pipeline import AnswerOptions, AnswerPipeline

__all__ = ["AnswerOptions", "AnswerPipeline"]
