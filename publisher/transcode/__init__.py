"""The transcoder: profiles, a planner that encodes each distinct rendition once from one decode,
and a content-addressed rendition cache."""

from publisher.transcode.planner import PlannedRendition, TranscodePlan
from publisher.transcode.runner import Transcoder

__all__ = ["PlannedRendition", "TranscodePlan", "Transcoder"]
