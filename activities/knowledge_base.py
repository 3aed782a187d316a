"""The `publish_kb_article` activity: a completed post-mortem's article into the knowledge base. One small adapter:
a markdown file per post-mortem under a folder (ESCALATION_KB_DIR), written whole (a temporary file renamed), so a
retried attempt writes the same file again and a reader never sees half an article."""

from __future__ import annotations

import os
import re
from pathlib import Path

import structlog
from temporalio import activity

log = structlog.get_logger("escalation.kb")


class KnowledgeBase:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @activity.defn(name="publish_kb_article")
    async def publish(self, postmortem_id: str, markdown: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{re.sub(r'[^A-Za-z0-9._-]', '_', postmortem_id)}.md"
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(markdown, encoding="utf-8")
        os.replace(tmp, path)
        log.info("kb article published", postmortem_id=postmortem_id, path=str(path))
        return str(path.resolve())
