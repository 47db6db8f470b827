"""(being written)"""

from dothi.api.http import Router

router = Router(prefix="/program/pilots", tags=["National programme"])
