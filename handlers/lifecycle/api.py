"""What other features may use of the lifecycle: the stage-change event, the stored results,
the CRM attributes it writes (so nobody else writes them), and the behaviour matrix's shape
(segments × stages and the path SOPs covering each cell: the console's page counts the cells)."""

from __future__ import annotations

from .events import StageEntered
from .matrix import NO_SEGMENT, Matrix, frame
from .models import CustomerSegment
from .nightly import MIRRORED
from .rules import LIFECYCLE_FILE, SEGMENTS_FILE, Lifecycle, Segmentation, load_lifecycle, load_segmentation

__all__ = ["LIFECYCLE_FILE", "MIRRORED", "NO_SEGMENT", "SEGMENTS_FILE", "CustomerSegment", "Lifecycle", "Matrix",
           "Segmentation", "StageEntered", "frame", "load_lifecycle", "load_segmentation"]
