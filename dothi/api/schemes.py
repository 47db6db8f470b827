"""(being written)"""

from dothi.api.http import Router

router = Router(prefix="/program/schemes", tags=["National programme"])
