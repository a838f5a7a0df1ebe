"""The prompt cache behind ``Client.get_prompt``: memory with a TTL, one refresh in flight per key,
and a last-known-good copy on disk.

What it guarantees:

- A fresh entry (younger than the TTL) is answered from memory. A stale one is answered at once too,
  while one background refresh per key revalidates it with ``If-None-Match``; a 304 only extends its
  life, a 200 replaces it.
- A caller with nothing in memory waits for one fetch (callers of the same key share it) no longer
  than ``timeout`` in total. When the server gives no answer (refused, silent, 5xx) it gets the
  last-known-good copy from disk (a warning is logged once per prompt), else the caller's
  fallback, else ``PromptUnavailable`` naming the prompt, the server and why.
- The server's refusals are never papered over from a cache: a 423 (kill switch) or a 404 (not
  deployed, no such prompt) drops every copy of that prompt and environment, in memory and on disk,
  and raises; a 400/401/403 raises and leaves the disk copy alone (it is about the caller, not the
  prompt). A refusal is remembered for one TTL, so a disabled prompt does not cost a request a call.
- Keys are (slug, environment, canary bucket of the unit): the server picks the canary side by
  bucket (``promptledger.canary``), so every unit of a bucket gets the same version and the cache
  holds at most 101 entries per prompt and environment, whatever the number of units.
"""

import atexit
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .canary import canary_bucket
from .errors import APIError, ConnectionFailed, PromptDisabled, PromptledgerError, PromptUnavailable, ServerError
from .prompt import Prompt

log = logging.getLogger("promptledger.client")

BUCKETS = (None, *range(100))

# Disk copies being written, one Event each. Waiters get their answer before the copy is written,
# so a process that got its prompt may exit at once: it still finishes them (bounded) on the way out.
_writing, _writing_lock = set(), threading.Lock()


@atexit.register
def _finish_writes(limit=5.0):
    deadline = time.monotonic() + limit
    with _writing_lock:
        pending = list(_writing)
    for written in pending:
        written.wait(max(0.0, deadline - time.monotonic()))


def default_cache_dir():
    """``$PROMPTLEDGER_CACHE_DIR``, else ``$XDG_CACHE_HOME/promptledger``, else ``~/.cache/promptledger``
    (computed, never created: the folder is made when a first copy is saved)."""
    if os.environ.get("PROMPTLEDGER_CACHE_DIR"):
        return Path(os.environ["PROMPTLEDGER_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = Path.home() / ".cache"
        except RuntimeError:  # no home directory (a bare container user): the system's temporary folder
            return Path(tempfile.gettempdir()) / f"promptledger-{os.getuid()}"
    return Path(base) / "promptledger"


class LastKnownGood:
    """Resolve answers on disk: one folder per (server, prompt, environment), one JSON file per
    bucket. Written to a temporary file in the same folder and moved into place with ``os.replace``,
    so a reader sees the old file or the new one, never half of one. No fsync: a copy lost to a
    power cut only means "never cached", and an unreadable file is treated so."""

    def __init__(self, root, server):
        self.root, self.server = Path(root), server

    def folder(self, slug, environment):
        readable = re.sub(r"[^A-Za-z0-9_-]", "_", f"{slug}-{environment}")[:60]
        digest = hashlib.sha256(f"{self.server}\x00{slug}\x00{environment}".encode()).hexdigest()[:20]
        return self.root / f"{readable}-{digest}"

    @staticmethod
    def _name(bucket):
        return "all.json" if bucket is None else f"bucket-{bucket:02d}.json"

    def save(self, slug, environment, bucket, etag, data):
        folder = self.folder(slug, environment)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = {"server": self.server, "etag": etag, "saved_at": time.time(), "data": data}
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")  # mode 0600
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(record, out, separators=(",", ":"))
            os.replace(temporary, folder / self._name(bucket))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def load(self, slug, environment, bucket):
        """``(etag, data, saved_at)`` of the bucket's copy; for a bucket never saved, the
        non-canary version (the one every unit outside the canary gets), or ``None``."""
        folder = self.folder(slug, environment)
        record = self._read(folder / self._name(bucket))
        if record is None and bucket is not None:
            record = self._read(folder / "all.json")
            if record is None:
                for path in sorted(folder.glob("bucket-*.json")) if folder.is_dir() else ():
                    candidate = self._read(path)
                    if candidate is not None and not candidate["data"].get("canary"):
                        record = candidate
                        break
        return None if record is None else (record["etag"], record["data"], record["saved_at"])

    @staticmethod
    def _read(path):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            record["data"]["content_hash"]  # noqa: B018 - the shape check: a record we wrote
            return record
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("promptledger: ignoring the unreadable cached copy %s: %s", path, exc)
            return None

    def drop(self, slug, environment):
        folder = self.folder(slug, environment)
        for path in folder.glob("*.json") if folder.is_dir() else ():
            path.unlink(missing_ok=True)


@dataclass(slots=True)
class _Entry:
    prompt: Prompt | None
    etag: str
    expires: float  # time.monotonic(): fresh until then
    retry_at: float = 0.0  # when stale: no revalidation starts before then (after a failed one)
    error: APIError | None = None  # a refusal remembered until ``expires``


class _Flight:
    """One fetch in progress for a key; callers of that key wait on it instead of starting another."""

    __slots__ = ("done", "finished", "prompt", "error")

    def __init__(self):
        self.done = threading.Event()  # the answer is there
        self.finished = threading.Event()  # and its disk copy written: the flight is over
        self.prompt, self.error = None, None


class PromptCache:
    """See the module docstring. ``fetch(slug, environment, unit, etag, deadline)`` returns a
    ``Resolved`` or raises the client's errors; it must give up by ``deadline`` (monotonic)."""

    def __init__(self, *, fetch, server, ttl, timeout, disk=None):
        self.fetch, self.server, self.ttl, self.timeout, self.disk = fetch, server, ttl, timeout, disk
        self.retry_delay = min(ttl, 5.0)  # a stale entry's revalidation is retried this often
        self._entries, self._flights, self._warned = {}, {}, set()
        self._generation = {}  # (slug, environment) -> count of drops, so a late write cannot undo one
        self._locks = {}  # (slug, environment) -> lock around disk writes and drops
        self._lock = threading.Lock()
        self._closed = False

    # --- answering ---------------------------------------------------------------------------------

    def get(self, slug, environment, unit=None, fallback=None):
        key = (slug, environment, self.key_bucket(slug, environment, unit))
        prompt = self.lookup(key, unit)
        return prompt if prompt is not None else self.fetch_now(key, unit, fallback)

    @staticmethod
    def key_bucket(slug, environment, unit):
        """The bucket part of a key: ``None`` without a unit (as the server, which ignores an empty one)."""
        return canary_bucket(slug, environment, unit) if unit else None

    def lookup(self, key, unit):
        """The prompt memory can answer now (a stale one starts a background refresh), a remembered
        refusal raised again, or ``None``. Never blocks on the network."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = time.monotonic()
        if entry.error is not None:
            if now < entry.expires:
                raise entry.error.again()
            return None
        if now >= entry.expires and now >= entry.retry_at:
            self._start(key, unit, stale=entry)
        return entry.prompt

    def fetch_now(self, key, unit, fallback):
        """Nothing in memory: wait for the key's one fetch, within ``timeout``; then disk, fallback,
        or ``PromptUnavailable``."""
        flight = self._start(key, unit)
        if not flight.done.wait(self.timeout):
            reason = f"no answer within {self.timeout:g} s"
        elif flight.error is None:
            return flight.prompt
        elif isinstance(flight.error, ConnectionFailed | ServerError):
            reason = str(flight.error)
        else:
            raise flight.error.again()
        return self._without_server(key, fallback, reason)

    def _without_server(self, key, fallback, reason):
        slug, environment, bucket = key
        saved = self.disk.load(slug, environment, bucket) if self.disk else None
        if saved is not None:
            etag, data, saved_at = saved
            prompt = Prompt.from_resolve(data, source="disk")
            now = time.monotonic()
            with self._lock:
                current = self._entries.get(key)
                if current is None or current.prompt is None:
                    self._entries[key] = _Entry(prompt, etag, expires=now, retry_at=now + self.retry_delay)
                else:  # a fetch answered meanwhile
                    prompt = current.prompt
            if prompt.source == "disk":
                self._warn_once(
                    ("disk", key), "promptledger: %s (%s) is served from the last-known-good copy saved %s in %s, "
                    "because the server at %s is unreachable (%s)", slug, environment,
                    time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(saved_at)), self.disk.root, self.server, reason,
                )
            return prompt
        if fallback is not None:
            self._warn_once(("fallback", key), "promptledger: %s (%s) is served from the caller's fallback: the "
                            "server at %s is unreachable (%s) and no copy was ever cached", slug, environment,
                            self.server, reason)
            return Prompt.from_fallback(slug, environment, fallback)
        where = f" in {self.disk.root}" if self.disk else " (the disk cache is off)"
        raise PromptUnavailable(
            f"cannot get prompt '{slug}' for environment '{environment}': the server at {self.server} is "
            f"unreachable ({reason}), and no copy of it was ever cached{where}",
            slug=slug, environment=environment,
        )

    # --- fetching ----------------------------------------------------------------------------------

    def close(self):
        """Start no more background refreshes and wait (up to ``timeout``) for those under way, and
        for the disk copies they write. Memory and disk still answer; a fetch for a prompt not held
        still happens."""
        with self._lock:
            self._closed = True
            flights = list(self._flights.values())
        deadline = time.monotonic() + self.timeout
        for flight in flights:
            flight.finished.wait(max(0.0, deadline - time.monotonic()))

    def _start(self, key, unit, stale=None):
        """The key's flight, started unless one is under way (or, for a stale entry, unless another
        caller refreshed it meanwhile, or the cache is closed: then ``None``)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight
            if stale is not None:
                if self._closed:
                    return None
                now = time.monotonic()
                if self._entries.get(key) is not stale or now < stale.expires or now < stale.retry_at:
                    return None
            flight = self._flights[key] = _Flight()
            generation = self._generation.get(key[:2], 0)
        etag = stale.etag if stale is not None else None
        threading.Thread(target=self._fly, args=(key, unit, etag, flight, generation, stale),
                         name=f"promptledger-refresh-{key[0]}", daemon=True).start()
        return flight

    def _fly(self, key, unit, etag, flight, generation, stale):
        slug, environment, _ = key
        answer = None
        try:
            answer = self.fetch(slug, environment, unit, etag, time.monotonic() + self.timeout)
            flight.prompt = self._answered(key, answer, generation, stale)
        except PromptledgerError as exc:
            answer = None
            flight.error = exc
            if isinstance(exc, APIError) and not isinstance(exc, ServerError):
                self._refused(key, exc)
            else:
                self._unanswered(key, exc)
        except Exception as exc:  # noqa: BLE001 - e.g. a 200 that is not our JSON; waiters must still wake
            answer = None
            flight.error = ConnectionFailed(f"unreadable answer from {self.server}: {exc!r}")
            self._unanswered(key, flight.error)
        finally:
            # Waiters get the answer first; the disk copy is written after, while the flight is
            # still registered, so a slow disk delays no caller and two writes of a key never cross.
            written = None
            if answer is not None and not answer.not_modified and self.disk is not None:
                written = threading.Event()
                with _writing_lock:
                    _writing.add(written)
            flight.done.set()
            try:
                if written is not None:
                    self._save(key, answer, generation)
            finally:
                if written is not None:
                    written.set()
                    with _writing_lock:
                        _writing.discard(written)
                with self._lock:
                    self._flights.pop(key, None)
                flight.finished.set()

    def _answered(self, key, answer, generation, stale):
        now = time.monotonic()
        if answer.not_modified:  # the server confirmed the copy held: it lives one more TTL
            with self._lock:
                if self._entries.get(key) is stale and self._generation.get(key[:2], 0) == generation:
                    stale.expires, stale.retry_at = now + self.ttl, 0.0
                    if stale.prompt.source != "server":  # a disk copy the server just confirmed
                        stale.prompt = replace(stale.prompt, source="server")
                self._warned.difference_update({("stale", key), ("disk", key)})
                return stale.prompt
        prompt = Prompt.from_resolve(answer.data)
        with self._lock:
            if self._generation.get(key[:2], 0) == generation:  # else dropped meanwhile: answer, keep nothing
                self._entries[key] = _Entry(prompt, answer.etag, expires=now + self.ttl)
                self._warned.difference_update({("stale", key), ("disk", key)})
        return prompt

    def _save(self, key, answer, generation):
        """The last-known-good copy, unless the prompt was dropped (a 423, a 404) since the fetch began."""
        slug, environment, bucket = key
        with self._prompt_lock(key):
            with self._lock:
                if self._generation.get(key[:2], 0) != generation:
                    return
            try:
                self.disk.save(slug, environment, bucket, answer.etag, answer.data)
            except OSError as exc:
                self._warn_once(("save", key), "promptledger: cannot save the last-known-good copy of %s (%s) "
                                "in %s: %s", slug, environment, self.disk.root, exc)

    def _refused(self, key, error):
        slug, environment, _ = key
        held = _Entry(None, "", expires=time.monotonic() + self.ttl, error=error)
        if error.status not in (404, 423):
            with self._lock:
                self._entries[key] = held
            return
        # Not deployed, no such prompt, or kill-switched: no copy of it may be served again.
        with self._prompt_lock(key):
            with self._lock:
                self._generation[key[:2]] = self._generation.get(key[:2], 0) + 1
                for bucket in BUCKETS:
                    self._entries.pop((slug, environment, bucket), None)
                self._entries[key] = held
            if self.disk is not None:
                try:
                    self.disk.drop(slug, environment)
                except OSError as exc:
                    log.error("promptledger: cannot delete the cached copies of %s (%s) in %s: %s",
                              slug, environment, self.disk.root, exc)
        if isinstance(error, PromptDisabled):
            log.warning("promptledger: %s (%s) is kill-switched; its cached copies are dropped: %s",
                        slug, environment, error.detail)

    def _unanswered(self, key, error):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.prompt is None:
                return
            entry.retry_at = time.monotonic() + self.retry_delay
        self._warn_once(("stale", key), "promptledger: cannot revalidate %s (%s): %s; serving the copy held "
                        "(version %s) until the server answers", key[0], key[1], error, entry.prompt.number)

    # --- bookkeeping -------------------------------------------------------------------------------

    def _prompt_lock(self, key):
        with self._lock:
            return self._locks.setdefault(key[:2], threading.Lock())

    def _warn_once(self, marker, message, *args):
        with self._lock:
            if marker in self._warned:
                return
            self._warned.add(marker)
        log.warning(message, *args)
