"""Talking to a Qdrant server (server.py's lower half): the connection options, `connect`,
every client call retried when transient (retry.py) and its failure turned into a bookvec
error that says how to fix it, and the physical collections behind the user's alias.

Users name the collection `books`; on the server it is an alias of a physical collection
`books_<time>_<rand>`. The model version and vector size are collection metadata (`metadata=`
on create_collection: Qdrant server >= 1.16, qdrant-client >= 1.16).
"""

from __future__ import annotations

import os
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException

from bookvec.errors import BookvecError, ConfigError, DataNotFoundError, StoreError
from bookvec.indexer import hybrid
from bookvec.indexer.retry import Retry, is_transient, message_of, status_of
from bookvec.indexer.types import (
    ACORN_MAX_SELECTIVITY,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    IndexOptions,
)

ENV_GRPC = "BOOKVEC_QDRANT_GRPC"
ENV_TIMEOUT = "BOOKVEC_QDRANT_TIMEOUT"
ENV_PARALLEL = "BOOKVEC_QDRANT_PARALLEL"
PAGE = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class ServerOptions:
    """How to talk to a server."""

    prefer_grpc: bool = False
    https: bool | None = None  # None: follow the URL's scheme
    timeout: int = 10  # seconds per request
    retries: int = 3  # extra attempts, for transient failures only
    backoff: float = 0.25  # first wait in seconds; doubles each retry
    max_backoff: float = 4.0
    batch_size: int = 256  # points per upload request
    parallel: int = 4  # upload requests in flight at once

    @classmethod
    def from_env(cls) -> ServerOptions:
        grpc = os.environ.get(ENV_GRPC, "").strip().lower() in ("1", "true", "yes", "on")
        timeout = _env_int(ENV_TIMEOUT, cls.timeout, "a whole number of seconds", MAX_TIMEOUT)
        parallel = _env_int(ENV_PARALLEL, cls.parallel, "a number of requests", MAX_PARALLEL)
        return cls(prefer_grpc=grpc, timeout=timeout, parallel=parallel)


MAX_TIMEOUT = 3600  # seconds: past an hour a request is not coming back
MAX_PARALLEL = 64


def _env_int(name: str, default: int, what: str, most: int) -> int:
    raw = os.environ.get(name, "").strip()
    hint = f"set it to a whole number from 1 to {most}, e.g. {default}"
    try:
        value = int(raw[:20]) if raw else default  # (a 5,000-digit value is not a number)
    except ValueError:
        raise ConfigError(f"{name}={raw[:40]!r} is not {what}", hint=hint) from None
    if value < 1:
        raise ConfigError(f"{name}={raw[:40]} is out of range: it must be at least 1", hint=hint)
    if value > most or len(raw) > 20:
        raise ConfigError(f"{name}={raw[:40]} is out of range: at most {most}", hint=hint)
    return value


def connect(url: str, api_key: str | None, options: ServerOptions) -> QdrantClient:
    from bookvec.settings import ENV_QDRANT_URL, check_url

    url = check_url(url)
    # No compatibility check: it costs a request at every start and warns on stderr.
    extra = {} if options.https is None else {"https": options.https}
    try:
        return QdrantClient(
            url=url,
            api_key=api_key,
            prefer_grpc=options.prefer_grpc,
            timeout=options.timeout,
            check_compatibility=False,
            **extra,
        )
    except ValueError as exc:  # urllib3's LocationParseError is one, as is "Unknown scheme"
        raise ConfigError(
            f"the Qdrant URL is malformed: {str(exc).splitlines()[0]}",
            hint=f"give e.g. http://localhost:6333 (--url or {ENV_QDRANT_URL})",
        ) from None


class ServerClient:
    """The calls and collections of ServerStore (its attributes are set by its __init__)."""

    client: QdrantClient
    alias: str
    read_only: bool
    options: ServerOptions
    location: str
    local: bool
    _retry: Retry
    _size: int | None
    _params: Any
    _sparse: bool | None

    def _call(self, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """One client call, retried when transient, its failure turned into a bookvec error."""
        try:
            return self._retry.call(fn, *args, **kwargs)
        except BookvecError:
            raise
        except Exception as exc:
            raise self._translate(what, exc) from exc

    def _translate(self, what: str, exc: Exception) -> BookvecError:
        where = self.location or "the Qdrant server"
        text = message_of(exc)
        status = status_of(exc)
        attempts = f"{self._retry.retries + 1} attempts"
        if is_transient(exc) and status is not None and status >= 500:
            return StoreError(
                f"Qdrant at {where} failed to {what} ({status}) after {attempts}: {text}",
                hint="the server is unwell: check its logs, then run the command again",
            )
        if is_transient(exc) and _timed_out(exc):
            return StoreError(
                f"Qdrant at {where} timed out ({what}): no answer within "
                f"{self.options.timeout} s, after {attempts}",
                hint=f"check that the server is up and not overloaded, or raise {ENV_TIMEOUT} "
                f"(seconds, now {self.options.timeout})",
            )
        if is_transient(exc):
            return StoreError(
                f"cannot reach Qdrant at {where}: it did not answer ({what}) after "
                f"{attempts}: {text}",
                hint="check the URL (--url / BOOKVEC_QDRANT_URL), start the server "
                "(`docker compose up -d`), or unset BOOKVEC_QDRANT_URL to use the embedded store",
            )
        if status == 401:
            given = bool(self.client.init_options.get("api_key"))
            return StoreError(
                f"Qdrant at {where} refused to {what} (401): "
                + ("the API key is wrong" if given else "it needs an API key"),
                hint="set BOOKVEC_QDRANT_API_KEY (or --api-key) to the server's API key",
            )
        if status == 403:
            return StoreError(
                f"Qdrant at {where} refused to {what} (403): the API key may not do that",
                hint="set BOOKVEC_QDRANT_API_KEY to a key that may (a read-only key cannot write)",
            )
        if "Collection `" in text or text.startswith("Collection "):
            return self._no_collection()
        shape = _wrong_shape(exc)
        if shape:
            return StoreError(
                f"Qdrant at {where} answered ({what}) with a reply of the wrong shape: {shape}",
                hint="check that the URL is a Qdrant server's REST port (6333 by default), "
                "version 1.16 or newer",
            )
        return StoreError(f"Qdrant at {where} could not {what}: {' '.join(text.split())[:300]}")

    def _no_collection(self) -> DataNotFoundError:
        return DataNotFoundError(
            f"no collection {self.alias!r} at {self.location or 'the Qdrant server'}",
            hint="run `bookvec index` first",
        )

    # --- collections and aliases ---------------------------------------------------------------
    def _physical(self) -> str | None:
        """The collection behind the alias (or a plain collection that has the alias's name)."""
        aliases = self._call("list aliases", self.client.get_aliases).aliases
        for alias in aliases:
            if alias.alias_name == self.alias:
                return alias.collection_name
        if self._call("look for the collection", self.client.collection_exists, self.alias):
            return self.alias
        return None

    def _create(
        self,
        vector_size: int,
        model_version: str,
        shards: int | None,
        replicas: int | None,
        options: IndexOptions,
    ) -> str:
        """A new physical collection with its payload indexes, before any point goes in."""
        _check_layout(shards, replicas)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"{self.alias}_{stamp}_{secrets.token_hex(2)}"
        metadata = {
            "bookvec": {
                "format": 1,
                "model_version": model_version,
                "vector_size": vector_size,
                "created": stamp,
                "index": options.to_dict(),
                "shards": shards or 1,
                "replicas": replicas or 1,
            }
        }
        quantization = None
        if options.quantization == "int8":
            quantization = models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=0.99, always_ram=True
                )
            )
        try:
            self._call(
                "create a collection",
                self.client.create_collection,
                collection_name=name,
                vectors_config=models.VectorParams(
                    size=vector_size, distance=models.Distance.COSINE
                ),
                sparse_vectors_config=_sparse_config(options),
                shard_number=shards,
                replication_factor=replicas,
                hnsw_config=models.HnswConfigDiff(
                    m=options.hnsw_m, ef_construct=options.hnsw_ef_construct
                ),
                quantization_config=quantization,
                metadata=metadata,
            )
        except StoreError:  # a retried create whose first attempt went through
            if not self._call("look for the collection", self.client.collection_exists, name):
                raise
        schemas = [(field, models.PayloadSchemaType.KEYWORD) for field in KEYWORD_FIELDS]
        schemas += [(field, models.PayloadSchemaType.INTEGER) for field in INTEGER_FIELDS]
        with warnings.catch_warnings():  # local mode: "Payload indexes have no effect"
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for field, schema in schemas:
                self._call(
                    "create a payload index",
                    self.client.create_payload_index,
                    name,
                    field_name=field,
                    field_schema=schema,
                    wait=True,
                )
        return name

    def _switch_alias(self, new: str, old: str | None) -> None:
        actions: list[Any] = []
        if old == self.alias:
            # A plain collection holds the alias's name (made by hand or by an older bookvec):
            # it must go before the alias can exist. Not atomic, and needed only once.
            self._drop(old)
        elif old is not None:
            actions.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias))
            )
        create = models.CreateAlias(collection_name=new, alias_name=self.alias)
        actions.append(models.CreateAliasOperation(create_alias=create))
        try:
            self._call(
                "switch the alias",
                self.client.update_collection_aliases,
                change_aliases_operations=actions,
            )
        except StoreError:  # a retried switch whose first attempt went through
            if self._physical() != new:
                raise

    def _drop(self, name: str) -> None:
        try:
            self._call("drop a collection", self.client.delete_collection, name)
        except BookvecError:
            pass  # best effort: an orphan collection costs space, not correctness


def _wrong_shape(exc: Exception) -> str | None:
    """A reply that is not JSON, or JSON not of the shape qdrant-client expects: one line."""
    import json

    from pydantic import ValidationError

    source = getattr(exc, "source", None) if isinstance(exc, ResponseHandlingException) else exc
    if isinstance(source, ValidationError):
        first = source.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "the reply"
        return f"{source.error_count()} problem(s), first {where}: {first.get('msg', '')}"
    if isinstance(source, json.JSONDecodeError):
        return f"not JSON ({source.msg} at character {source.pos})"
    if isinstance(source, (AttributeError, KeyError, TypeError, IndexError)):
        return f"{type(source).__name__}: {' '.join(str(source).split())[:200]}"
    return None


def _timed_out(exc: Exception) -> bool:
    """A transient failure that is a timeout (not a refused or dropped connection)."""
    import httpx

    source = getattr(exc, "source", exc)  # ResponseHandlingException wraps the httpx error
    if isinstance(source, (httpx.TimeoutException, TimeoutError)):
        return True
    code = getattr(exc, "code", None)
    return callable(code) and getattr(code(), "name", "") == "DEADLINE_EXCEEDED"


def _search_params(options: IndexOptions) -> models.SearchParams:
    quantization = None
    if options.quantization == "int8":
        quantization = models.QuantizationSearchParams(rescore=True, oversampling=2.0)
    acorn = models.AcornSearchParams(enable=True, max_selectivity=ACORN_MAX_SELECTIVITY)
    return models.SearchParams(hnsw_ef=options.hnsw_ef, quantization=quantization, acorn=acorn)


def _sparse_config(options: IndexOptions) -> dict[str, Any] | None:
    if not options.has_sparse:
        return None
    modifier = models.Modifier.IDF if options.sparse == "idf" else None
    return {hybrid.SPARSE: models.SparseVectorParams(modifier=modifier)}


def _check_layout(shards: int | None, replicas: int | None) -> None:
    for name, value in (("--shards", shards), ("--replicas", replicas)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, not {value}")


def _shown(location: str) -> str:
    """The server's URL as every message and `info` show it: credentials masked."""
    from bookvec.safetext import mask_url

    return mask_url(location) or ""
