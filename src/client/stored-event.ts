import type { DescMessage, Message, MessageShape } from "@bufbuild/protobuf";
import type { EventHeaders } from "../consume/event.js";
import { decodeAs, decodeWith, type EncodedEvent, eventHeaders, readEvent } from "../consume/event-data.js";
import type { Decoder } from "../consume/options.js";
import type { StoredEvent as EngineStoredEvent } from "../engines/engine.js";
import { assertSchema } from "../internal/codec.js";
import { headerMap } from "../internal/headers.js";

/**
 * An event read back from its stream (`getEvent`, `getLastEvent`): the same
 * headers and data access as a delivered `Event`, without settlement.
 *
 * @typeParam T - the decoded message type, from the call's `schema`.
 */
export interface StoredEvent<T extends Message = Message> {
  /** The event's id: its sequence number in the stream. */
  readonly id: number;
  /** The subject it was published to. */
  readonly subject: string;
  /** The stream it is stored in. */
  readonly stream: string;
  /** When the stream stored it. */
  readonly storedAt: Date;
  /**
   * The full Protobuf type name of the payload (`WS-Data-Type`, else the
   * CloudEvent's `type`); `""` when missing.
   */
  readonly type: string;
  /** The parsed windshift headers. */
  readonly headers: EventHeaders;
  /**
   * The decoded message, typed by the call's `schema` or looked up in its
   * `registry` by {@link StoredEvent.type}; `INVALID_DATA` when it cannot be
   * decoded or is of another type.
   */
  readonly data: T;
  /**
   * The raw Protobuf bytes: the message's payload as stored. For a
   * structured-mode CloudEvent that is its JSON envelope; `data` and
   * `decode` read the data inside it (`data_base64` as Protobuf binary,
   * JSON `data` with `fromJson`).
   */
  readonly payload: Uint8Array;
  /** The headers as published, names as sent. */
  readonly rawHeaders: readonly (readonly [name: string, value: string])[];
  /** Whether the event's type is `schema`'s. */
  is(schema: DescMessage): boolean;
  /** Decodes the payload as `schema`; `INVALID_DATA` when the type differs or decoding fails. */
  decode<Desc extends DescMessage>(schema: Desc): MessageShape<Desc>;
}

/** The one {@link StoredEvent} implementation. */
export class StoredEventImpl<T extends Message = Message> implements StoredEvent<T> {
  readonly id: number;
  readonly subject: string;
  readonly stream: string;
  readonly storedAt: Date;
  readonly payload: Uint8Array;
  readonly rawHeaders: readonly (readonly [name: string, value: string])[];
  readonly type: string;
  readonly headers: EventHeaders;
  /** What `data` and `decode` read: a structured CloudEvent's data, else the payload. */
  readonly #encoded: EncodedEvent;
  readonly #decoder: Decoder;
  #data: { value: unknown } | undefined;

  constructor(stream: string, stored: EngineStoredEvent, decoder: Decoder) {
    this.id = stored.id;
    this.subject = stored.subject;
    this.stream = stream;
    this.storedAt = new Date(stored.time);
    this.rawHeaders = stored.headers;
    const map = headerMap(stored.headers);
    const view = readEvent(map, stored.payload);
    this.payload = stored.payload;
    this.type = view.type;
    this.#encoded = { type: view.type, payload: view.payload, json: view.json, id: stored.id };
    this.headers = eventHeaders(map, view);
    this.#decoder = decoder;
  }

  get data(): T {
    this.#data ??= { value: decodeWith(this.#decoder, this.#encoded, "getEvent() / getLastEvent()") };
    return this.#data.value as T;
  }

  is(schema: DescMessage): boolean {
    assertSchema("schema", schema);
    return this.type === schema.typeName;
  }

  decode<Desc extends DescMessage>(schema: Desc): MessageShape<Desc> {
    assertSchema("schema", schema);
    return decodeAs(schema, this.#encoded);
  }
}
