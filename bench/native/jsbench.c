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
 *   jsbench latency URL STREAM CONSUMER SUBJECT COUNT RATE BATCH ACKS BLOB_HEX SIZE
 *       The bench's latency round (latencyRound in bench/scenarios.ts): pulls
 *       from the existing consumer, then publishes COUNT events to SUBJECT at
 *       RATE per second on schedule from the start (js_PublishAsync, none
 *       awaited before the next, js_PublishAsyncComplete at the end), each
 *       carrying the time of its own publish call in its number field, while
 *       the pull side takes each event, decodes it, records now minus that
 *       time and acks it (ACKS: "confirmed", a +ACK request answered by the
 *       server, one at a time, as nats.js ackAck() is awaited; or
 *       "fire-and-forget"). Prints the latencies too:
 *         {"mode":"latency",...,"latencyUs":[...]}  (integer microseconds, in handling order)
 *       and "seconds" from the first publish until every event is handled and
 *       acked (then a flush) and every publish acknowledged.
 *
 *       The pull side is nats.js's consume() written against libnats's core
 *       API: libnats 3.4 has no continuous pull (natsSubscription_Fetch waits
 *       for a whole batch once no message is pending, which would add up to a
 *       batch's worth of pacing to the latency), so it is one async
 *       subscription on an inbox and $JS.API.CONSUMER.MSG.NEXT requests:
 *       first BATCH events, then BATCH minus those still to come whenever
 *       75 % of BATCH or fewer are (nats.js's max_messages and default
 *       threshold_messages). The requests expire after the run's bound, so
 *       any status from the server (408 expired, 409, ...) fails the run.
 *       The whole run is bounded: COUNT/RATE + 15 s after the pull starts
 *       (as latencyRound's deadline), and an alarm beyond that.
 *
 * The events are the bench's TestEvent (windshift.test.v1), encoded by hand
 * the way protobuf-es encodes them: field 1 text "event-%08d" (i mod 1e8),
 * field 2 number 2^21 + (i mod 1e6) (a 4-byte varint), field 3 the blob given
 * in hex. Decoding walks the wire format (tags, varints, lengths), copies the
 * text into a buffer (protobuf-es builds a string) and takes the blob in place
 * (protobuf-es takes a subarray).
 *
 * In the latency mode, field 2 carries the publish time instead: 2^21 + the
 * microseconds since the mode's start (bench/drivers.ts stampOf), still a
 * 4-byte varint, so the event keeps its size.
 *
 * Timing: nats_NowInNanoSeconds() around the work, after the connection is up
 * (the TypeScript variants connect once, before all rounds); the consume side
 * counts js_PullSubscribe's consumer lookup, as the TypeScript drains count
 * theirs. The latency mode uses CLOCK_MONOTONIC throughout, and paces with
 * clock_nanosleep to each due time (no spinning).
 */
#include <errno.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NUMBER_BASE (1u << 21)
#define NUMBER_LIMIT (1u << 28)
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

/* Encodes the i-th event into out (large enough) with number (2^21 <= number < 2^28) in field 2; returns its length. */
static size_t encode_event_number(uint8_t *out, int i, uint64_t number, const uint8_t *blob, size_t blobLen)
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
    n += put_varint(out + n, number);
    out[n++] = 0x1a; /* field 3, length-delimited */
    n += put_varint(out + n, blobLen);
    memcpy(out + n, blob, blobLen);
    return n + blobLen;
}

/* Encodes the i-th event into out (large enough); returns its length. */
static size_t encode_event(uint8_t *out, int i, const uint8_t *blob, size_t blobLen)
{
    return encode_event_number(out, i, NUMBER_BASE + (uint64_t) (i % 1000000), blob, blobLen);
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

/* Decodes one event (its number into *numberOut, if given); returns 0, or -1 if it is not a well-formed TestEvent. */
static int decode_event(const uint8_t *p, size_t len, uint64_t *numberOut)
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
    if (numberOut != NULL)
        *numberOut = number;
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

/*
 * The blob given in hex (freed by the caller), and a buffer large enough for an
 * event; fails unless events encode to exactly size bytes.
 */
static uint8_t *parse_blob(const char *blobHex, int size, size_t *blobLen, uint8_t **buf)
{
    size_t hexLen = strlen(blobHex);
    if (hexLen % 2 != 0)
    {
        fprintf(stderr, "jsbench: the blob must be hex\n");
        exit(2);
    }
    *blobLen = hexLen / 2;
    uint8_t *blob = malloc(*blobLen + 1);
    *buf = malloc(*blobLen + 64);
    if (blob == NULL || *buf == NULL)
        fail("malloc", NATS_NO_MEMORY);
    for (size_t i = 0; i < *blobLen; i++)
    {
        int hi = hex_value(blobHex[2 * i]), lo = hex_value(blobHex[2 * i + 1]);
        if (hi < 0 || lo < 0)
        {
            fprintf(stderr, "jsbench: the blob must be hex\n");
            exit(2);
        }
        blob[i] = (uint8_t) (hi << 4 | lo);
    }
    size_t encoded = encode_event(*buf, 0, blob, *blobLen);
    if ((int) encoded != size)
    {
        fprintf(stderr, "jsbench: events encode to %zu bytes, expected %d\n", encoded, size);
        exit(2);
    }
    return blob;
}

static void run_publish(const char *url, const char *subject, int count, int window, const char *blobHex, int size)
{
    size_t blobLen;
    uint8_t *buf;
    uint8_t *blob = parse_blob(blobHex, size, &blobLen, &buf);

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
            if (decode_event((const uint8_t *) natsMsg_GetData(m), (size_t) natsMsg_GetDataLength(m), NULL) != 0)
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

/* After the last scheduled publish, how long the latency mode may take (latencyRound's LATENCY_GRACE_MS). */
#define LATENCY_GRACE_NS 15000000000LL
/* How long a confirmed ack waits for the server's answer (libnats's default jsOptions.Wait, natsMsg_AckSync's). */
#define ACK_WAIT_MS 5000

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec timespec_of(int64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t) (ns / 1000000000), .tv_nsec = (long) (ns % 1000000000)};
    return ts;
}

/* Sleeps until the monotonic time ns (at once if it has passed). */
static void sleep_until(int64_t ns)
{
    struct timespec ts = timespec_of(ns);
    int r;
    while ((r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR)
        ;
    if (r != 0)
    {
        fprintf(stderr, "jsbench: clock_nanosleep: %s\n", strerror(r));
        exit(1);
    }
}

static void on_alarm(int sig)
{
    static const char msg[] = "jsbench: latency: still running past the run's bound, given up\n";
    (void) sig;
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void) w;
    _exit(1);
}

/*
 * The pull side of the latency mode. Only the subscription's callback thread
 * touches latencyNs and pending (the first pull is sent before any message can
 * arrive); done and error are set under mu and waited for by the main thread.
 */
typedef struct
{
    natsConnection *nc;
    const char *inbox;
    char next[512];
    int count;
    int batch;
    int threshold;
    bool confirmed;
    int64_t epochNs;
    int64_t expiresNs;
    int64_t *latencyNs;
    int pending;
    atomic_int handled;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
    char error[512];
} latency_state;

static void latency_finish(latency_state *st, const char *error)
{
    pthread_mutex_lock(&st->mu);
    if (!st->done)
    {
        st->done = true;
        if (error != NULL)
            snprintf(st->error, sizeof(st->error), "%s", error);
        pthread_cond_signal(&st->cond);
    }
    pthread_mutex_unlock(&st->mu);
}

static void latency_fail(latency_state *st, const char *what, natsStatus s)
{
    char error[512];
    const char *last = nats_GetLastError(NULL);
    snprintf(error, sizeof(error), "%s: %s%s%s", what, natsStatus_GetText(s), last != NULL ? ": " : "",
             last != NULL ? last : "");
    latency_finish(st, error);
}

/* Asks for n more events: a MSG.NEXT request with the subscription's inbox as its reply subject. */
static natsStatus latency_pull(latency_state *st, int n)
{
    char body[128];
    int len = snprintf(body, sizeof(body), "{\"batch\":%d,\"expires\":%lld}", n, (long long) st->expiresNs);
    st->pending += n;
    return natsConnection_PublishRequest(st->nc, st->next, st->inbox, body, len);
}

/* Each event: decode, record now minus the publish time it carries, ack; ask for more below the threshold. */
static void on_latency_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    latency_state *st = closure;
    natsStatus s = NATS_OK;
    const char *status = NULL;
    (void) sub;
    if (st->done || atomic_load(&st->handled) >= st->count)
    {
        natsMsg_Destroy(m);
        return;
    }
    if (natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", &status) == NATS_OK)
    {
        /* 100: an idle heartbeat (none asked for). Anything else (408 expired, 409 ...) is not expected here. */
        if (strcmp(status, "100") != 0)
        {
            const char *description = NULL;
            char error[256];
            natsMsgHeader_Get(m, "Description", &description);
            snprintf(error, sizeof(error), "pull status %s %s", status, description != NULL ? description : "");
            latency_finish(st, error);
        }
        natsMsg_Destroy(m);
        return;
    }
    int i = atomic_load(&st->handled);
    uint64_t number = 0;
    if (decode_event((const uint8_t *) natsMsg_GetData(m), (size_t) natsMsg_GetDataLength(m), &number) != 0 ||
        number < NUMBER_BASE || number >= NUMBER_LIMIT)
    {
        char error[128];
        snprintf(error, sizeof(error), "event %d is not a TestEvent carrying a time", i);
        latency_finish(st, error);
        natsMsg_Destroy(m);
        return;
    }
    st->latencyNs[i] = mono_ns() - (st->epochNs + (int64_t) (number - NUMBER_BASE) * 1000);
    const char *reply = natsMsg_GetReply(m);
    if (reply == NULL || reply[0] == '\0')
    {
        latency_finish(st, "an event without a reply subject to ack");
        natsMsg_Destroy(m);
        return;
    }
    if (st->confirmed)
    {
        /* What natsMsg_AckSync (and nats.js's ackAck) sends: +ACK as a request, the server's answer awaited. */
        natsMsg *answer = NULL;
        s = natsConnection_RequestString(&answer, nc, reply, "+ACK", ACK_WAIT_MS);
        natsMsg_Destroy(answer);
    }
    else
    {
        s = natsConnection_PublishString(nc, reply, "+ACK");
    }
    natsMsg_Destroy(m);
    if (s != NATS_OK)
    {
        latency_fail(st, "ack", s);
        return;
    }
    st->pending--;
    if (atomic_fetch_add(&st->handled, 1) + 1 == st->count)
    {
        latency_finish(st, NULL);
        return;
    }
    if (st->pending <= st->threshold)
    {
        s = latency_pull(st, st->batch - st->pending);
        if (s != NATS_OK)
            latency_fail(st, "pull request", s);
    }
}

static void run_latency(const char *url, const char *stream, const char *consumer, const char *subject, int count,
                        int rate, int batch, const char *acks, const char *blobHex, int size)
{
    bool confirmed = strcmp(acks, "confirmed") == 0;
    if (!confirmed && strcmp(acks, "fire-and-forget") != 0)
    {
        fprintf(stderr, "jsbench: ACKS must be confirmed or fire-and-forget, got %s\n", acks);
        exit(2);
    }
    /* The run's bound, from the first pull: the schedule plus the grace. */
    int64_t boundNs = (int64_t) ((double) count * 1e9 / rate) + LATENCY_GRACE_NS;
    /* Field 2 holds microseconds since the start below 2^28 - 2^21 (268 s); leave room for connecting. */
    if (boundNs > 240000000000LL)
    {
        fprintf(stderr, "jsbench: COUNT/RATE must be at most 225 s (the publish time must fit the event)\n");
        exit(2);
    }
    size_t blobLen;
    uint8_t *buf;
    uint8_t *blob = parse_blob(blobHex, size, &blobLen, &buf);
    /* Connecting (2 s at most), the run, the teardown: past this, give up whatever is blocking. */
    signal(SIGALRM, on_alarm);
    alarm((unsigned int) (boundNs / 1000000000) + 30);

    latency_state st;
    memset(&st, 0, sizeof(st));
    st.count = count;
    st.batch = batch;
    st.threshold = (int) ((batch * 3 + 2) / 4); /* nats.js: Math.round(max_messages * 0.75) || 1 */
    if (st.threshold < 1)
        st.threshold = 1;
    st.confirmed = confirmed;
    st.expiresNs = boundNs + 10000000000LL; /* outlives the run: no request expires while it lasts */
    atomic_init(&st.handled, 0);
    st.latencyNs = malloc((size_t) count * sizeof(int64_t));
    if (st.latencyNs == NULL)
        fail("malloc", NATS_NO_MEMORY);
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&st.cond, &ca) != 0 || pthread_mutex_init(&st.mu, NULL) != 0)
    {
        fprintf(stderr, "jsbench: cannot set up the condition variable\n");
        exit(1);
    }
    pthread_condattr_destroy(&ca);
    int nextLen = snprintf(st.next, sizeof(st.next), "$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream, consumer);
    if (nextLen < 0 || nextLen >= (int) sizeof(st.next))
    {
        fprintf(stderr, "jsbench: stream and consumer names too long\n");
        exit(2);
    }

    st.epochNs = mono_ns();
    natsConnection *nc = connect_to(url);
    st.nc = nc;
    jsOptions jo;
    jsCtx *js = NULL;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = count; /* none awaited before the next, as latencyRound */
    jo.PublishAsync.ErrHandler = on_publish_error;
    natsStatus s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK)
        fail("natsConnection_JetStream", s);

    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    s = natsInbox_Create(&inbox);
    if (s == NATS_OK)
    {
        st.inbox = (const char *) inbox;
        s = natsConnection_Subscribe(&sub, nc, st.inbox, on_latency_msg, &st);
    }
    if (s == NATS_OK)
        s = latency_pull(&st, batch);
    /* Answered once the server has the subscription and the pull request: it is pulling. */
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(nc, 5000);
    if (s != NATS_OK)
        fail("pull subscription", s);

    int64_t start = mono_ns();
    int64_t deadline = start + boundNs;
    int i = 0;
    for (;;)
    {
        /* Every event due by now (the i-th at start + i/RATE), each stamped with the time of its publish call. */
        int64_t due = (int64_t) ((double) (mono_ns() - start) * rate / 1e9) + 1;
        if (due > count)
            due = count;
        for (; i < due; i++)
        {
            uint64_t stamp = NUMBER_BASE + (uint64_t) ((mono_ns() - st.epochNs + 500) / 1000);
            if (stamp >= NUMBER_LIMIT)
            {
                fprintf(stderr, "jsbench: the publish time no longer fits the event\n");
                exit(1);
            }
            size_t len = encode_event_number(buf, i, stamp, blob, blobLen);
            s = js_PublishAsync(js, subject, buf, (int) len, NULL);
            if (s != NATS_OK)
                fail("js_PublishAsync", s);
        }
        if (i == count)
            break;
        sleep_until(start + (int64_t) ((double) i * 1e9 / rate));
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = (deadline - mono_ns()) / 1000000;
    if (po.MaxWait < 1)
        po.MaxWait = 1;
    s = js_PublishAsyncComplete(js, &po);
    if (s != NATS_OK)
        fail("js_PublishAsyncComplete", s);
    if (publishErrors > 0)
    {
        fprintf(stderr, "jsbench: %d of %d publishes failed\n", publishErrors, count);
        exit(1);
    }

    struct timespec until = timespec_of(deadline);
    pthread_mutex_lock(&st.mu);
    while (!st.done)
    {
        int r = pthread_cond_timedwait(&st.cond, &st.mu, &until);
        if (r == ETIMEDOUT)
            break;
        if (r != 0)
        {
            fprintf(stderr, "jsbench: pthread_cond_timedwait: %s\n", strerror(r));
            exit(1);
        }
    }
    bool done = st.done;
    pthread_mutex_unlock(&st.mu);
    if (!done)
    {
        fprintf(stderr, "jsbench: %d of %d events handled after %.1f s\n", atomic_load(&st.handled), count,
                (double) (mono_ns() - start) / 1e9);
        exit(1);
    }
    if (st.error[0] != '\0')
    {
        fprintf(stderr, "jsbench: after %d of %d events: %s\n", atomic_load(&st.handled), count, st.error);
        exit(1);
    }
    s = natsConnection_FlushTimeout(nc, 5000);
    if (s != NATS_OK)
        fail("natsConnection_FlushTimeout", s);
    int64_t end = mono_ns();

    double seconds = (double) (end - start) / 1e9;
    printf("{\"mode\":\"latency\",\"count\":%d,\"seconds\":%.9f,\"eventsPerSec\":%.1f,\"libnats\":\"%s\","
           "\"latencyUs\":[",
           count, seconds, (double) count / seconds, nats_GetVersion());
    for (int k = 0; k < count; k++)
        printf(k == 0 ? "%lld" : ",%lld", (long long) ((st.latencyNs[k] + 500) / 1000));
    printf("]}\n");
    if (fflush(stdout) != 0 || ferror(stdout))
    {
        fprintf(stderr, "jsbench: cannot write the result\n");
        exit(1);
    }

    /* The consumer stays (the bench deletes it); a request still open on the server ends with the subscription. */
    s = natsSubscription_Unsubscribe(sub);
    if (s != NATS_OK)
        fail("natsSubscription_Unsubscribe", s);
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(inbox);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    pthread_cond_destroy(&st.cond);
    pthread_mutex_destroy(&st.mu);
    alarm(0);
    free(st.latencyNs);
    free(blob);
    free(buf);
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
    else if (argc == 12 && strcmp(argv[1], "latency") == 0)
    {
        run_latency(argv[2], argv[3], argv[4], argv[5], parse_count(argv[6], "COUNT"), parse_count(argv[7], "RATE"),
                    parse_count(argv[8], "BATCH"), argv[9], argv[10], parse_count(argv[11], "SIZE"));
    }
    else
    {
        fprintf(stderr, "usage: jsbench version\n"
                        "       jsbench publish URL SUBJECT COUNT WINDOW BLOB_HEX SIZE\n"
                        "       jsbench consume URL STREAM CONSUMER COUNT BATCH\n"
                        "       jsbench latency URL STREAM CONSUMER SUBJECT COUNT RATE BATCH ACKS BLOB_HEX SIZE\n");
        return 2;
    }
    nats_Close();
    return 0;
}
