/*
 * The C client's column of `npm run bench`: the same rounds as the TypeScript
 * variants, written against libnats (the NATS C client, 3.x) as a C service
 * would use it. bench/native.ts compiles it on demand (gcc -O2 ... -lnats into
 * .build/native/) and runs it once per round; it prints one JSON line:
 *
 *   {"mode":"publish","count":N,"seconds":S,"eventsPerSec":R,"libnats":"3.4.1"}
 *
 * Usage:
 *   jsbench version
 *   jsbench publish URL SUBJECT COUNT WINDOW BLOB_HEX SIZE
 *       js_PublishAsync of COUNT events to SUBJECT with at most WINDOW acks
 *       pending (jsOptions.PublishAsync.MaxPending), then
 *       js_PublishAsyncComplete. No headers. Errors reported by the server
 *       (jsOptions.PublishAsync.ErrHandler) fail the run.
 *   jsbench consume URL STREAM CONSUMER COUNT BATCH
 *       js_PullSubscribe bound to the existing consumer, natsSubscription_Fetch
 *       of up to BATCH messages at a time, each decoded and acked with
 *       natsMsg_Ack (fire-and-forget), until COUNT events; then a flush (a PING
 *       answered), so that every ack has reached the server.
 *
 * The events are the bench's TestEvent (windshift.test.v1), encoded by hand
 * the way protobuf-es encodes them: field 1 text "event-%08d" (i mod 1e8),
 * field 2 number 2^21 + (i mod 1e6) (a 4-byte varint), field 3 the blob given
 * in hex. Decoding walks the wire format (tags, varints, lengths), copies the
 * text into a buffer (protobuf-es builds a string) and takes the blob in place
 * (protobuf-es takes a subarray).
 *
 * Timing: nats_NowInNanoSeconds() around the work, after the connection is up
 * (the TypeScript variants connect once, before all rounds); the consume side
 * counts js_PullSubscribe's consumer lookup, as the TypeScript drains count
 * theirs.
 */
#include <nats/nats.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUMBER_BASE (1u << 21)
#define TEXT_LENGTH 14

static void fail(const char *what, natsStatus s)
{
    fprintf(stderr, "jsbench: %s: %s\n", what, natsStatus_GetText(s));
    nats_PrintLastErrorStack(stderr);
    exit(1);
}

static int parse_count(const char *arg, const char *what)
{
    char *end = NULL;
    long n = strtol(arg, &end, 10);
    if (end == arg || *end != '\0' || n < 1 || n > 100000000)
    {
        fprintf(stderr, "jsbench: %s must be a positive integer, got %s\n", what, arg);
        exit(2);
    }
    return (int) n;
}

static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80)
    {
        out[n++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t) v;
    return n;
}

/* Encodes the i-th event into out (large enough); returns its length. */
static size_t encode_event(uint8_t *out, int i, const uint8_t *blob, size_t blobLen)
{
    size_t n = 0;
    unsigned int k = (unsigned int) (i % 100000000);
    out[n++] = 0x0a; /* field 1, length-delimited */
    out[n++] = TEXT_LENGTH;
    memcpy(out + n, "event-", 6);
    for (int d = 7; d >= 0; d--)
    {
        out[n + 6 + d] = (uint8_t) ('0' + k % 10);
        k /= 10;
    }
    n += TEXT_LENGTH;
    out[n++] = 0x10; /* field 2, varint */
    n += put_varint(out + n, NUMBER_BASE + (uint64_t) (i % 1000000));
    out[n++] = 0x1a; /* field 3, length-delimited */
    n += put_varint(out + n, blobLen);
    memcpy(out + n, blob, blobLen);
    return n + blobLen;
}

static int get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v, const uint8_t **next)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7)
    {
        uint8_t b = *p++;
        r |= (uint64_t) (b & 0x7f) << shift;
        if ((b & 0x80) == 0)
        {
            *v = r;
            *next = p;
            return 0;
        }
    }
    return -1;
}

/* Keeps decoded data observable so that nothing is optimised away. */
static volatile uint64_t sink;

/* Decodes one event; returns 0, or -1 if it is not a well-formed TestEvent. */
static int decode_event(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    char text[256];
    size_t textLen = 0;
    const uint8_t *blob = NULL;
    size_t blobLen = 0;
    uint64_t number = 0;
    while (p < end)
    {
        uint64_t tag, v;
        if (get_varint(p, end, &tag, &p) != 0)
            return -1;
        switch (tag & 7)
        {
        case 0:
            if (get_varint(p, end, &v, &p) != 0)
                return -1;
            if ((tag >> 3) == 2)
                number = v;
            break;
        case 2:
            if (get_varint(p, end, &v, &p) != 0 || v > (uint64_t) (end - p))
                return -1;
            if ((tag >> 3) == 1)
            {
                if (v >= sizeof(text))
                    return -1;
                memcpy(text, p, v);
                textLen = v;
            }
            else if ((tag >> 3) == 3)
            {
                blob = p;
                blobLen = v;
            }
            p += v;
            break;
        default:
            return -1;
        }
    }
    sink ^= textLen ^ number ^ blobLen ^ (blob != NULL && blobLen > 0 ? blob[0] : 0) ^ (textLen > 0 ? text[0] : 0);
    return 0;
}

static natsConnection *connect_to(const char *url)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, url);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, opts);
    if (s != NATS_OK)
        fail("connect", s);
    natsOptions_Destroy(opts);
    return nc;
}

static void print_result(const char *mode, int count, int64_t startNs, int64_t endNs)
{
    double seconds = (double) (endNs - startNs) / 1e9;
    printf("{\"mode\":\"%s\",\"count\":%d,\"seconds\":%.9f,\"eventsPerSec\":%.1f,\"libnats\":\"%s\"}\n", mode, count,
           seconds, (double) count / seconds, nats_GetVersion());
    fflush(stdout);
}

static int publishErrors;

static void on_publish_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void) js;
    (void) closure;
    if (publishErrors++ == 0)
        fprintf(stderr, "jsbench: publish failed: %s (%d)\n", pae->ErrText, (int) pae->ErrCode);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void run_publish(const char *url, const char *subject, int count, int window, const char *blobHex, int size)
{
    size_t hexLen = strlen(blobHex);
    if (hexLen % 2 != 0)
    {
        fprintf(stderr, "jsbench: the blob must be hex\n");
        exit(2);
    }
    size_t blobLen = hexLen / 2;
    uint8_t *blob = malloc(blobLen + 1);
    uint8_t *buf = malloc(blobLen + 64);
    if (blob == NULL || buf == NULL)
        fail("malloc", NATS_NO_MEMORY);
    for (size_t i = 0; i < blobLen; i++)
    {
        int hi = hex_value(blobHex[2 * i]), lo = hex_value(blobHex[2 * i + 1]);
        if (hi < 0 || lo < 0)
        {
            fprintf(stderr, "jsbench: the blob must be hex\n");
            exit(2);
        }
        blob[i] = (uint8_t) (hi << 4 | lo);
    }
    size_t encoded = encode_event(buf, 0, blob, blobLen);
    if ((int) encoded != size)
    {
        fprintf(stderr, "jsbench: events encode to %zu bytes, expected %d\n", encoded, size);
        exit(2);
    }

    natsConnection *nc = connect_to(url);
    jsOptions jo;
    jsCtx *js = NULL;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = window;
    jo.PublishAsync.ErrHandler = on_publish_error;
    jo.PublishAsync.StallWait = 60000; /* a stalled publish waits for room, it does not fail */
    natsStatus s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK)
        fail("natsConnection_JetStream", s);

    int64_t start = nats_NowInNanoSeconds();
    for (int i = 0; i < count; i++)
    {
        size_t len = encode_event(buf, i, blob, blobLen);
        s = js_PublishAsync(js, subject, buf, (int) len, NULL);
        if (s != NATS_OK)
            fail("js_PublishAsync", s);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120000;
    s = js_PublishAsyncComplete(js, &po);
    if (s != NATS_OK)
        fail("js_PublishAsyncComplete", s);
    int64_t end = nats_NowInNanoSeconds();
    if (publishErrors > 0)
    {
        fprintf(stderr, "jsbench: %d of %d publishes failed\n", publishErrors, count);
        exit(1);
    }
    print_result("publish", count, start, end);

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(blob);
    free(buf);
}

static void run_consume(const char *url, const char *stream, const char *consumer, int count, int batch)
{
    natsConnection *nc = connect_to(url);
    jsCtx *js = NULL;
    natsStatus s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK)
        fail("natsConnection_JetStream", s);

    int64_t start = nats_NowInNanoSeconds();
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Consumer = consumer;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    s = js_PullSubscribe(&sub, js, NULL, NULL, NULL, &so, &jerr);
    if (s != NATS_OK)
        fail("js_PullSubscribe", s);

    int received = 0;
    int idle = 0;
    while (received < count)
    {
        natsMsgList list;
        int want = count - received < batch ? count - received : batch;
        s = natsSubscription_Fetch(&list, sub, want, 5000, &jerr);
        if (s == NATS_TIMEOUT)
        {
            if (++idle == 3)
            {
                fprintf(stderr, "jsbench: no message for 15 s after %d of %d\n", received, count);
                exit(1);
            }
            continue;
        }
        if (s != NATS_OK)
            fail("natsSubscription_Fetch", s);
        idle = 0;
        for (int i = 0; i < list.Count; i++)
        {
            natsMsg *m = list.Msgs[i];
            if (decode_event((const uint8_t *) natsMsg_GetData(m), (size_t) natsMsg_GetDataLength(m)) != 0)
            {
                fprintf(stderr, "jsbench: message %d is not a TestEvent\n", received + i);
                exit(1);
            }
            s = natsMsg_Ack(m, NULL);
            if (s != NATS_OK)
                fail("natsMsg_Ack", s);
        }
        received += list.Count;
        natsMsgList_Destroy(&list);
    }
    s = natsConnection_FlushTimeout(nc, 30000);
    if (s != NATS_OK)
        fail("natsConnection_FlushTimeout", s);
    int64_t end = nats_NowInNanoSeconds();
    print_result("consume", count, start, end);

    /* Destroying a bound subscription leaves the consumer alone (libnats >= 3.4.0); the bench deletes it. */
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "version") == 0)
    {
        printf("{\"libnats\":\"%s\"}\n", nats_GetVersion());
        return 0;
    }
    if (argc == 8 && strcmp(argv[1], "publish") == 0)
    {
        run_publish(argv[2], argv[3], parse_count(argv[4], "COUNT"), parse_count(argv[5], "WINDOW"), argv[6],
                    parse_count(argv[7], "SIZE"));
    }
    else if (argc == 7 && strcmp(argv[1], "consume") == 0)
    {
        run_consume(argv[2], argv[3], argv[4], parse_count(argv[5], "COUNT"), parse_count(argv[6], "BATCH"));
    }
    else
    {
        fprintf(stderr, "usage: jsbench version\n"
                        "       jsbench publish URL SUBJECT COUNT WINDOW BLOB_HEX SIZE\n"
                        "       jsbench consume URL STREAM CONSUMER COUNT BATCH\n");
        return 2;
    }
    nats_Close();
    return 0;
}
