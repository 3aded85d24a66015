"""Files on the stand-in's Telegram: ids for new ones, uploads the bot sends, and the file a
send* call attaches (uploaded with it, attached by name or resent by file_id)."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator

from aiohttp import web

from sandbox.telegram.records import UploadedFile
from sandbox.telegram.request import ApiError, ApiRequest


class FileStore:
    def __init__(self, ids: Iterator[int]) -> None:
        self._ids = ids
        self.files: dict[str, UploadedFile] = {}  # what the bot sent, by file_id

    def new_ids(self, prefix: str) -> tuple[str, str]:
        """A fresh (file_id, file_unique_id) pair; the prefix mimics Telegram's per-kind ones."""
        number = next(self._ids)
        return f"{prefix}-file-{number}", f"{prefix}-uniq-{number}"

    def to_upload(self, part: web.FileField) -> UploadedFile:
        mime_type = part.content_type
        if not mime_type or mime_type == "application/octet-stream":
            # aiogram never sets a part type; Telegram infers it from the file name.
            mime_type = mimetypes.guess_type(part.filename)[0] or "application/octet-stream"
        file_id, unique_id = self.new_ids("BQAC")
        return UploadedFile(file_id, unique_id, part.filename, mime_type, part.file.read())

    def attached(self, call: ApiRequest, field: str) -> UploadedFile:
        """The file of a send* call: uploaded in the field, attached by name, or a file_id."""
        reference = call.get_str(field)
        if reference is None:
            upload = call.uploads.get(field)  # the file sent directly in the field
        elif reference.startswith("attach://"):
            upload = call.uploads.get(reference.removeprefix("attach://"))
        else:
            upload = self.files.get(reference)  # resending by file_id
        if upload is None:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        self.files[upload.file_id] = upload
        return upload
