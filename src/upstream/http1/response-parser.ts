/**
 * The response side of one HTTP/1.1 exchange (RFC 9112), read off a pooled upstream connection.
 *
 * The proxy re-frames what it relays, so a response it frames differently from the upstream server
 * (or from another parser on the path) would let one message smuggle bytes into the next. Hence the
 * strictness: CRLF only, no obs-fold, no control bytes in the head, one unambiguous body length, and
 * any doubt is an `HttpParseError` after which the connection must not be used again.
 */

const HTAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const DEL = 0x7f;
const HEAD_END = Buffer.from('\r\n\r\n');

/** At most 13 hex digits, so a chunk size stays below 2^52 and exact in a number. */
const MAX_CHUNK_SIZE_DIGITS = 13;

/** RFC 9112 §4; the SP before an empty reason-phrase may be missing, as llhttp allows too. */
const STATUS_LINE = /^HTTP\/1\.([01]) ([0-9]{3})(?: (.*))?$/s;
const DIGITS = /^[0-9]+$/;
/** tchar, RFC 9110 §5.6.2. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export class HttpParseError extends Error {
  override name = 'HttpParseError';
}

export interface ResponseHead {
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 */
  minorVersion: 0 | 1;
  /** 200–599: interim (1xx) responses are skipped. */
  status: number;
  /** May be ''. */
  reason: string;
  /**
   * The header fields in the order received: name as sent, value without leading/trailing SP/HTAB.
   * latin1-decoded.
   */
  fields: [name: string, value: string][];
  /** Whether the connection may carry another exchange once this message has ended. */
  keepAlive: boolean;
  /** Whether the response has no body by rule (to HEAD, 204, 304), whatever its framing fields say. */
  bodiless: boolean;
  /** The Content-Length fields' value, read as a number, when there are any. */
  contentLength: number | undefined;
}

export interface ResponseHandlers {
  head(head: ResponseHead): void;
  /**
   * Decoded body bytes (chunked framing removed), never empty: a view of the pushed buffer, not a copy,
   * so its bytes change if the caller reuses that buffer after the call.
   */
  body(chunk: Buffer): void;
  /** The message is complete. */
  end(): void;
}

type State =
  | 'head'
  | 'length-body'
  | 'close-body'
  | 'chunk-line'
  | 'chunk-data'
  | 'chunk-data-cr'
  | 'chunk-data-lf'
  | 'trailers'
  | 'done';

type Framing = 'none' | 'length' | 'chunked' | 'close';

/**
 * Parses the response to one request: push() the bytes read from the connection, close() at EOF.
 * One parser per exchange: bytes after the end of the response are an error, as nothing was pipelined.
 */
export class ResponseParser {
  private state: State = 'head';
  private readonly lines = new LineReader();
  /** The head being read; undefined until its status line has arrived. */
  private head: HeadBuilder | undefined;
  /** Bytes of the current head or trailer section so far, against `maxHeadBytes`. */
  private sectionBytes = 0;
  /** Body or chunk-data bytes still to come. */
  private remaining = 0;
  private isEnded = false;
  private failure: { error: unknown } | undefined;
  private readonly headTooLong: string;
  private readonly trailersTooLong: string;
  private readonly chunkLineTooLong: string;

  /**
   * @param requestMethod as sent (methods are case-sensitive): a response to HEAD has no body.
   * @param maxHeadBytes the most a head (status line, field lines and the final CRLF) may take, and so may
   *   the trailer section or a chunk line.
   */
  constructor(
    private readonly requestMethod: string,
    private readonly handlers: ResponseHandlers,
    private readonly maxHeadBytes = 16384,
  ) {
    // A NaN or negative limit would never trip, and the head would be buffered without bound.
    if (!Number.isSafeInteger(maxHeadBytes) || maxHeadBytes < 1) {
      throw new RangeError(`maxHeadBytes must be a positive integer, not ${maxHeadBytes}`);
    }
    // A 2xx to CONNECT turns the connection into a tunnel (RFC 9112 §6.3), which is no message to parse.
    if (requestMethod === 'CONNECT') {
      throw new RangeError('a response to CONNECT cannot be parsed as a message');
    }
    this.headTooLong = `response head exceeds ${maxHeadBytes} bytes`;
    this.trailersTooLong = `trailer section exceeds ${maxHeadBytes} bytes`;
    this.chunkLineTooLong = `chunk line exceeds ${maxHeadBytes} bytes`;
  }

  /** True once end() has been called. */
  get ended(): boolean {
    return this.isEnded;
  }

  /**
   * Bytes read from the connection, in order. Calls the handlers synchronously; throws `HttpParseError`
   * on malformed input, and on any byte after the end.
   */
  push(data: Buffer): void {
    this.throwIfDead();
    try {
      let pos = 0;
      while (pos < data.length) pos = this.consume(data, pos);
    } catch (error) {
      this.die(error);
    }
  }

  /**
   * The connection reached EOF: this ends a close-delimited body, and is an `HttpParseError` while any
   * other response is incomplete (or has not begun). Does nothing after the end.
   */
  close(): void {
    this.throwIfDead();
    if (this.isEnded) return;
    try {
      if (this.state !== 'close-body') {
        throw new HttpParseError('connection closed before the response ended');
      }
      this.end();
    } catch (error) {
      this.die(error);
    }
  }

  /** Takes what the current state expects from `data` at `pos`; returns the position after it. */
  private consume(data: Buffer, pos: number): number {
    switch (this.state) {
      case 'head':
        return this.consumeHeadLine(data, pos);
      case 'length-body':
        return this.consumeLengthBody(data, pos);
      case 'close-body':
        this.handlers.body(data.subarray(pos));
        return data.length;
      case 'chunk-line':
        return this.consumeChunkLine(data, pos);
      case 'chunk-data':
        return this.consumeChunkData(data, pos);
      case 'chunk-data-cr':
        return this.expectByte(data, pos, CR, 'chunk-data-lf');
      case 'chunk-data-lf':
        return this.expectByte(data, pos, LF, 'chunk-line');
      case 'trailers':
        return this.consumeTrailerLine(data, pos);
      case 'done':
        throw new HttpParseError('data after the end of the response');
    }
  }

  private consumeHeadLine(data: Buffer, pos: number): number {
    if (this.head === undefined && !this.lines.isMidLine) {
      const next = this.consumeWholeHead(data, pos);
      if (next !== -1) return next;
    }
    const next = this.lines.read(data, pos, this.maxHeadBytes - this.sectionBytes, this.headTooLong);
    if (next === -1) return data.length;
    this.takeHeadLine(this.lines.line);
    return next;
  }

  /**
   * The common case, a head that arrives whole in one push, with one search and one decoding instead of
   * one per line. From the status line on, the first CRLF CRLF is where reading line by line would find
   * the blank line (or fail before), so both ways read the same lines.
   */
  private consumeWholeHead(data: Buffer, pos: number): number {
    const found = data.indexOf(HEAD_END, pos);
    if (found === -1) return -1;
    const end = found + HEAD_END.length;
    // Left to the line-by-line reading, which fails on the first line beyond the limit.
    if (end - pos > this.maxHeadBytes) return -1;
    const text = data.toString('latin1', pos, end);
    for (let start = 0; start < text.length;) {
      const lf = text.indexOf('\n', start);
      if (text.charCodeAt(lf - 1) !== CR) throw new HttpParseError('bare lf in line ending');
      this.takeHeadLine(text.slice(start, lf - 1));
      start = lf + 1;
    }
    return end;
  }

  private takeHeadLine(line: string): void {
    this.sectionBytes += line.length + 2;
    if (this.head === undefined) this.head = parseStatusLine(line);
    else if (line.length > 0) this.head.addField(line);
    else this.completeHead(this.head);
  }

  private completeHead(head: HeadBuilder): void {
    this.head = undefined;
    this.sectionBytes = 0;
    // An interim response has no body; the final response follows on the same connection.
    if (head.status < 200) return;
    const framing = framingOf(head, this.requestMethod);
    this.handlers.head({
      minorVersion: head.minorVersion,
      status: head.status,
      reason: head.reason,
      fields: head.fields,
      keepAlive: keepsAlive(head, framing),
      bodiless: framing === 'none',
      contentLength: head.contentLength,
    });
    this.startBody(framing, head.contentLength ?? 0);
  }

  private startBody(framing: Framing, contentLength: number): void {
    if (framing === 'none' || (framing === 'length' && contentLength === 0)) {
      this.end();
    } else if (framing === 'length') {
      this.state = 'length-body';
      this.remaining = contentLength;
    } else {
      this.state = framing === 'chunked' ? 'chunk-line' : 'close-body';
    }
  }

  private consumeLengthBody(data: Buffer, pos: number): number {
    const next = this.deliverRemaining(data, pos);
    if (this.remaining === 0) this.end();
    return next;
  }

  private consumeChunkLine(data: Buffer, pos: number): number {
    const next = this.lines.read(data, pos, this.maxHeadBytes, this.chunkLineTooLong);
    if (next === -1) return data.length;
    const size = parseChunkSize(this.lines.line);
    // The trailer section is counted from 0, where the head's count was left: chunk lines count one by one.
    if (size === 0) {
      this.state = 'trailers';
    } else {
      this.state = 'chunk-data';
      this.remaining = size;
    }
    return next;
  }

  private consumeChunkData(data: Buffer, pos: number): number {
    const next = this.deliverRemaining(data, pos);
    if (this.remaining === 0) this.state = 'chunk-data-cr';
    return next;
  }

  private consumeTrailerLine(data: Buffer, pos: number): number {
    const next = this.lines.read(data, pos, this.maxHeadBytes - this.sectionBytes, this.trailersTooLong);
    if (next === -1) return data.length;
    const line = this.lines.line;
    this.sectionBytes += line.length + 2;
    // Trailers are checked like header fields so that a malformed one ends the connection, then dropped.
    if (line.length > 0) parseFieldLine(line);
    else this.end();
    return next;
  }

  /** Hands on as much of the `remaining` body bytes as `data` holds, without copying them. */
  private deliverRemaining(data: Buffer, pos: number): number {
    const next = Math.min(data.length, pos + this.remaining);
    this.remaining -= next - pos;
    this.handlers.body(data.subarray(pos, next));
    return next;
  }

  private expectByte(data: Buffer, pos: number, byte: number, then: State): number {
    if (data[pos] !== byte) throw new HttpParseError('missing crlf after chunk data');
    this.state = then;
    return pos + 1;
  }

  private end(): void {
    this.state = 'done';
    this.isEnded = true;
    this.handlers.end();
  }

  private throwIfDead(): void {
    if (this.failure) throw this.failure.error;
  }

  /** Whatever was thrown, the parser's state can no longer be trusted: every later call throws it again. */
  private die(error: unknown): never {
    this.failure = { error };
    throw error;
  }
}

/**
 * Cuts pushed bytes into CRLF-terminated lines. A line cut by the end of a push is kept as latin1 text
 * (byte for byte, and a copy, so the caller may reuse its buffer).
 */
class LineReader {
  /** The last line read, without its CRLF. */
  line = '';
  private partial = '';

  /** Whether the bytes pushed so far end inside a line. */
  get isMidLine(): boolean {
    return this.partial !== '';
  }

  /**
   * Reads the line at `pos`; returns the position after its LF, or -1 when `data` ends first.
   * Throws `tooLong` once the line, CRLF included, exceeds `maxBytes` even if its LF comes next:
   * while the line is still arriving, not after buffering it whole.
   */
  read(data: Buffer, pos: number, maxBytes: number, tooLong: string): number {
    const lf = data.indexOf(LF, pos);
    // Sizes are checked before decoding, so an oversized line is never turned into a string.
    if (lf === -1) {
      if (this.partial.length + data.length - pos >= maxBytes) throw new HttpParseError(tooLong);
      this.partial += data.toString('latin1', pos);
      return -1;
    }
    if (this.partial.length + lf - pos + 1 > maxBytes) throw new HttpParseError(tooLong);
    const text = this.partial + data.toString('latin1', pos, lf);
    this.partial = '';
    if (text.charCodeAt(text.length - 1) !== CR) throw new HttpParseError('bare lf in line ending');
    this.line = text.slice(0, -1);
    return lf + 1;
  }
}

/** A head as its field lines arrive, with what they say about framing. */
class HeadBuilder {
  readonly fields: [name: string, value: string][] = [];
  contentLength: number | undefined;
  /** Lower-cased, in order; undefined without a Transfer-Encoding field. */
  transferCodings: string[] | undefined;
  connectionClose = false;
  connectionKeepAlive = false;

  constructor(
    readonly minorVersion: 0 | 1,
    readonly status: number,
    readonly reason: string,
  ) {}

  addField(line: string): void {
    const field = parseFieldLine(line);
    this.fields.push(field);
    const [name, value] = field;
    // Only three names bear on framing; checking the length first spares lower-casing every other name.
    switch (name.length) {
      case 10:
        if (name.toLowerCase() === 'connection') this.noteConnection(value);
        break;
      case 14:
        // Checked in every response, used or not, as llhttp does.
        if (name.toLowerCase() === 'content-length') {
          this.contentLength = contentLengthOf(value, this.contentLength);
        }
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') this.noteTransferEncoding(value);
        break;
    }
  }

  private noteConnection(value: string): void {
    for (const option of listElements(value)) {
      const token = option.toLowerCase();
      if (token === 'close') this.connectionClose = true;
      else if (token === 'keep-alive') this.connectionKeepAlive = true;
    }
  }

  private noteTransferEncoding(value: string): void {
    this.transferCodings ??= [];
    for (const coding of listElements(value)) {
      if (coding !== '') this.transferCodings.push(coding.toLowerCase());
    }
  }
}

function parseStatusLine(line: string): HeadBuilder {
  const match = STATUS_LINE.exec(line);
  if (match === null) throw new HttpParseError('invalid status line');
  const status = Number(match[2]);
  if (status < 100 || status > 599) throw new HttpParseError('invalid status code');
  // Nothing after a 101 is HTTP, and the proxy never asks for an upgrade.
  if (status === 101) throw new HttpParseError('unexpected 101 switching protocols');
  const reason = match[3] ?? '';
  if (!isFieldText(reason, 0, reason.length)) throw new HttpParseError('invalid reason phrase');
  return new HeadBuilder(match[1] === '1' ? 1 : 0, status, reason);
}

/** `field-name ":" OWS field-value OWS`, RFC 9112 §5. */
function parseFieldLine(line: string): [name: string, value: string] {
  // A continuation line (RFC 9112 §5.2), or whitespace between the status line and the first field (§2.2).
  if (isOws(line.charCodeAt(0))) throw new HttpParseError('obsolete line folding');
  const colon = line.indexOf(':');
  if (colon === -1) throw new HttpParseError('invalid field line');
  const name = line.slice(0, colon);
  // Whitespace before the colon fails here too (RFC 9112 §5.1).
  if (!TOKEN.test(name)) throw new HttpParseError('invalid field name');
  if (!isFieldText(line, colon + 1, line.length)) throw new HttpParseError('invalid field value');
  return [name, trimOws(line, colon + 1, line.length)];
}

/** `chunk-size [ chunk-ext ]`, RFC 9112 §7.1; the extensions mean nothing to the proxy. */
function parseChunkSize(line: string): number {
  const extension = line.indexOf(';');
  const digitsEnd = extension === -1 ? line.length : extension;
  if (digitsEnd === 0 || digitsEnd > MAX_CHUNK_SIZE_DIGITS) throw new HttpParseError('invalid chunk size');
  let size = 0;
  for (let i = 0; i < digitsEnd; i++) {
    const digit = hexDigitValue(line.charCodeAt(i));
    if (digit === -1) throw new HttpParseError('invalid chunk size');
    size = size * 16 + digit;
  }
  if (extension !== -1 && !isFieldText(line, extension + 1, line.length)) {
    throw new HttpParseError('invalid chunk extension');
  }
  return size;
}

/** RFC 9112 §6.3, in its order. */
function framingOf(head: HeadBuilder, requestMethod: string): Framing {
  if (requestMethod === 'HEAD' || head.status === 204 || head.status === 304) return 'none';
  if (head.transferCodings !== undefined) {
    // The sender may not know chunked at all, so its body has no reliable end (RFC 9112 §6.1).
    if (head.minorVersion === 0) throw new HttpParseError('transfer-encoding in an http/1.0 response');
    // The proxy drops the hop-by-hop Transfer-Encoding, so it can only relay a body that is merely chunked.
    if (head.transferCodings.length !== 1 || head.transferCodings[0] !== 'chunked') {
      throw new HttpParseError('unsupported transfer coding');
    }
    // Two framings for one body: another parser on the way may pick the other (RFC 9112 §6.3 item 3 calls
    // it an error to handle; llhttp refuses it too).
    if (head.contentLength !== undefined) throw new HttpParseError('transfer-encoding with content-length');
    return 'chunked';
  }
  return head.contentLength === undefined ? 'close' : 'length';
}

function keepsAlive(head: HeadBuilder, framing: Framing): boolean {
  if (framing === 'close' || head.connectionClose) return false;
  // Both lengths, or Transfer-Encoding in HTTP/1.0, on a response without a body mark a faulty sender
  // that may have left bytes behind on the connection (RFC 9112 §6.1, §6.3): it must close after it.
  if (head.transferCodings !== undefined && (head.contentLength !== undefined || head.minorVersion === 0)) {
    return false;
  }
  return head.minorVersion === 1 || head.connectionKeepAlive;
}

/** A Content-Length value: a list of equal decimal numbers (RFC 9110 §8.6), equal to `previous` too. */
function contentLengthOf(value: string, previous: number | undefined): number | undefined {
  let length = previous;
  for (const element of listElements(value)) {
    if (!DIGITS.test(element)) throw new HttpParseError('invalid content-length');
    const parsed = Number(element);
    if (parsed > Number.MAX_SAFE_INTEGER) throw new HttpParseError('content-length too large');
    if (length !== undefined && parsed !== length) throw new HttpParseError('invalid content-length');
    length = parsed;
  }
  return length;
}

/** The elements of a comma-separated field value (RFC 9110 §5.6.1), without OWS; empty ones kept. */
function listElements(fieldValue: string): string[] {
  // Mostly a single element, which as a field value has no surrounding OWS already.
  if (!fieldValue.includes(',')) return [fieldValue];
  return fieldValue.split(',').map((element) => trimOws(element, 0, element.length));
}

function trimOws(text: string, start: number, end: number): string {
  while (start < end && isOws(text.charCodeAt(start))) start++;
  while (end > start && isOws(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

function isOws(code: number): boolean {
  return code === SP || code === HTAB;
}

/** HTAB, SP, VCHAR and obs-text only: no other control byte. Text decoded as latin1 has no code over 0xFF. */
function isFieldText(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if ((code < SP && code !== HTAB) || code === DEL) return false;
  }
  return true;
}

function hexDigitValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}
