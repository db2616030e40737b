package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func sampleMessage() Message {
	return Message{
		Topic:            "TopicTest",
		QueueID:          3,
		Flag:             7,
		QueueOffset:      42,
		PhysicalOffset:   1 << 33,
		SysFlag:          SysFlagCompressed,
		BornTimestamp:    1_700_000_000_123,
		BornHost:         netip.MustParseAddrPort("10.0.0.1:51234"),
		StoreTimestamp:   1_700_000_000_456,
		StoreHost:        netip.MustParseAddrPort("10.0.0.2:10911"),
		ReconsumeTimes:   2,
		PreparedTxOffset: 99,
		Body:             []byte("hello, body"),
		Properties: []Property{
			{PropertyKeys, "order-1 order-2"},
			{PropertyUniqKey, "7F0000010B2A18B4AAC27E8F6D2C0000"},
			{PropertyTags, "TagA"},
		},
	}
}

func encode(t *testing.T, m *Message) []byte {
	t.Helper()
	b, err := AppendMessage(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMessageLayout checks every field at the offset docs/FORMATS.md gives, independently of
// the decoder.
func TestMessageLayout(t *testing.T) {
	m := sampleMessage()
	b := encode(t, &m)
	be := binary.BigEndian
	i32 := func(off int) int32 { return int32(be.Uint32(b[off:])) }
	i64 := func(off int) int64 { return int64(be.Uint64(b[off:])) }
	props := "KEYS\x01order-1 order-2\x02UNIQ_KEY\x017F0000010B2A18B4AAC27E8F6D2C0000\x02TAGS\x01TagA\x02"
	wantSize := 91 + len(m.Body) + len(m.Topic) + len(props)
	f := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	f("len", len(b), wantSize)
	f("TOTALSIZE", i32(0), int32(wantSize))
	f("MAGIC", i32(4), int32(-626843481))
	f("BODYCRC", i32(8), BodyCRC(m.Body))
	f("QUEUEID", i32(12), int32(3))
	f("FLAG", i32(16), int32(7))
	f("QUEUEOFFSET", i64(20), int64(42))
	f("PHYSICALOFFSET", i64(28), int64(1<<33))
	f("SYSFLAG", i32(36), SysFlagCompressed)
	f("BORNTIMESTAMP", i64(40), int64(1_700_000_000_123))
	f("BORNHOST", string(b[48:52]), "\x0a\x00\x00\x01")
	f("BORNPORT", i32(52), int32(51234))
	f("STORETIMESTAMP", i64(56), int64(1_700_000_000_456))
	f("STOREHOST", string(b[64:68]), "\x0a\x00\x00\x02")
	f("STOREPORT", i32(68), int32(10911))
	f("RECONSUMETIMES", i32(72), int32(2))
	f("PREPAREDTX", i64(76), int64(99))
	f("BODYLEN", i32(84), int32(len(m.Body)))
	f("BODY", string(b[88:88+len(m.Body)]), string(m.Body))
	o := 88 + len(m.Body)
	f("TOPICLEN", int(b[o]), len(m.Topic))
	f("TOPIC", string(b[o+1:o+1+len(m.Topic)]), m.Topic)
	o += 1 + len(m.Topic)
	f("PROPLEN", int(be.Uint16(b[o:])), len(props))
	f("PROPS", string(b[o+2:]), props)
}

func TestBodyCRC(t *testing.T) {
	// CRC-32 (IEEE) of "123456789" is 0xCBF43926; RocketMQ keeps the low 31 bits.
	if got := BodyCRC([]byte("123456789")); got != 0x4BF43926 {
		t.Fatalf("BodyCRC = %#x", got)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	f := func(m Message, wantMagic int32, wantSysFlag int32) {
		t.Helper()
		b := encode(t, &m)
		if got := int32(binary.BigEndian.Uint32(b[4:])); got != wantMagic {
			t.Fatalf("magic %d, want %d", got, wantMagic)
		}
		size, err := EncodedSize(&m)
		if err != nil || size != len(b) {
			t.Fatalf("EncodedSize = %d, %v; encoded %d", size, err, len(b))
		}
		got, n, err := DecodeMessage(append(b, 0xFF, 0xFF)) // trailing bytes are not part of it
		if err != nil {
			t.Fatal(err)
		}
		if n != len(b) {
			t.Fatalf("n = %d, want %d", n, len(b))
		}
		m.SysFlag = wantSysFlag
		if !messagesEqual(got, m) {
			t.Fatalf("decoded %+v\nwant    %+v", got, m)
		}
	}
	m := sampleMessage()
	f(m, MagicV1, SysFlagCompressed)

	m = sampleMessage()
	m.Topic = strings.Repeat("t", 127)
	f(m, MagicV1, SysFlagCompressed)

	m = sampleMessage()
	m.Topic = strings.Repeat("t", 128)
	f(m, MagicV2, SysFlagCompressed)

	m = sampleMessage()
	m.BornHost = netip.MustParseAddrPort("[2001:db8::1]:9876")
	f(m, MagicV1, SysFlagCompressed|SysFlagBornHostV6)

	m = sampleMessage()
	m.StoreHost = netip.MustParseAddrPort("[::ffff:10.0.0.2]:10911") // 4-in-6 stays IPv6
	m.SysFlag = SysFlagBornHostV6                                    // stale bit is cleared
	f(m, MagicV1, SysFlagStoreHostV6)

	m = sampleMessage()
	m.Body, m.Properties, m.Topic = nil, nil, ""
	f(m, MagicV1, SysFlagCompressed)
}

func messagesEqual(a, b Message) bool {
	if !bytes.Equal(a.Body, b.Body) {
		return false
	}
	a.Body, b.Body = nil, nil
	if len(a.Properties) == 0 && len(b.Properties) == 0 {
		a.Properties, b.Properties = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func TestAppendMessageErrors(t *testing.T) {
	f := func(mut func(*Message), want string) {
		t.Helper()
		m := sampleMessage()
		mut(&m)
		dst := []byte("keep")
		out, err := AppendMessage(dst, &m)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
		if string(out) != "keep" {
			t.Fatalf("dst changed on error: %q", out)
		}
	}
	f(func(m *Message) { m.Topic = strings.Repeat("t", math.MaxInt16+1) }, "topic")
	f(func(m *Message) { m.Properties = []Property{{"", "v"}} }, "empty name")
	f(func(m *Message) { m.Properties = []Property{{"n", ""}} }, "empty value")
	f(func(m *Message) { m.Properties = []Property{{"a\x01b", "v"}} }, "separator")
	f(func(m *Message) { m.Properties = []Property{{"a", "v\x02"}} }, "separator")
	f(func(m *Message) { m.Properties = []Property{{"a", strings.Repeat("v", math.MaxInt16)}} }, "properties of")
}

func TestDecodeMessageErrors(t *testing.T) {
	m := sampleMessage()
	good := encode(t, &m)
	be := binary.BigEndian
	f := func(b []byte, wantIs error, want string) {
		t.Helper()
		_, _, err := DecodeMessage(b)
		if !errors.Is(err, wantIs) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %v containing %q", err, wantIs, want)
		}
	}
	mut := func(fn func(b []byte)) []byte {
		b := bytes.Clone(good)
		fn(b)
		return b
	}
	f(good[:7], io.ErrUnexpectedEOF, "need 8")
	f(good[:len(good)-1], io.ErrUnexpectedEOF, "available")
	f(mut(func(b []byte) { be.PutUint32(b[4:], 1) }), ErrCorrupt, "bad magic")
	f(mut(func(b []byte) { b[88] ^= 1 }), ErrCorrupt, "BODYCRC")
	f(mut(func(b []byte) { be.PutUint32(b[0:], 90) }), ErrCorrupt, "minimum")
	f(mut(func(b []byte) { be.PutUint32(b[0:], uint32(len(good)-1)) }), ErrCorrupt, "runs past")
	f(append(mut(func(b []byte) { be.PutUint32(b[0:], uint32(len(good)+1)) }), 0), ErrCorrupt, "fields end at")
	f(mut(func(b []byte) { be.PutUint32(b[84:], 0xFFFFFFFF) }), ErrCorrupt, "negative body length")
	f(mut(func(b []byte) { be.PutUint32(b[84:], 1<<30) }), ErrCorrupt, "runs past")
	f(mut(func(b []byte) { be.PutUint32(b[52:], 70000) }), ErrCorrupt, "port")
	f(mut(func(b []byte) { b[88+len(m.Body)] = 0x80 }), ErrCorrupt, "negative topic length")
	f(mut(func(b []byte) { be.PutUint32(b[36:], uint32(SysFlagBornHostV6)) }), ErrCorrupt, "")

	blank := be.AppendUint32(be.AppendUint32(nil, 4096), blankMagic)
	if _, n, err := DecodeMessage(blank); err != ErrBlank || n != 4096 {
		t.Fatalf("BLANK: n=%d err=%v", n, err)
	}
	blank = be.AppendUint32(be.AppendUint32(nil, 4), blankMagic)
	f(blank, ErrCorrupt, "BLANK of 4")
}

var blankMagic = func() uint32 { m := MagicBlank; return uint32(m) }()

func TestKeysAndProperties(t *testing.T) {
	f := func(props string, wantKeys []string, wantUniq string, wantProps []Property) {
		t.Helper()
		m := Message{Properties: parseProperties([]byte(props))}
		if !reflect.DeepEqual(m.Properties, wantProps) {
			t.Fatalf("properties %q = %q, want %q", props, m.Properties, wantProps)
		}
		if got := m.Keys(); !reflect.DeepEqual(got, wantKeys) {
			t.Fatalf("Keys = %q, want %q", got, wantKeys)
		}
		if got := m.UniqKey(); got != wantUniq {
			t.Fatalf("UniqKey = %q, want %q", got, wantUniq)
		}
	}
	f("", nil, "", nil)
	f("KEYS\x01a\x02", []string{"a"}, "", []Property{{"KEYS", "a"}})
	f("KEYS\x01 a  b c \x02UNIQ_KEY\x01U1", []string{"a", "b", "c"}, "U1",
		[]Property{{"KEYS", " a  b c "}, {"UNIQ_KEY", "U1"}})
	// Entries without a name or a value are skipped, as RocketMQ does; a value may hold \x01.
	f("\x01x\x02y\x01\x02KEYS\x01k\x01l\x02\x02UNIQ_KEY\x01A\x02UNIQ_KEY\x01B\x02", []string{"k\x01l"}, "B",
		[]Property{{"KEYS", "k\x01l"}, {"UNIQ_KEY", "A"}, {"UNIQ_KEY", "B"}})
	f("KEYS", nil, "", nil)
}

func TestJavaStringHashCode(t *testing.T) {
	f := func(s string, want int32) {
		t.Helper()
		if got := JavaStringHashCode(s); got != want {
			t.Fatalf("hash(%q) = %d, want %d", s, got, want)
		}
	}
	f("", 0)
	f("a", 97)
	f("hello", 99162322)
	f("Aa", 2112)
	f("BB", 2112)
	f("polygenelubricants", math.MinInt32) // well-known Integer.MIN_VALUE hash
	f("é", 233)
	f("€", 8364)
	f("😀", 0xD83D*31+0xDE00) // a surrogate pair: two UTF-16 units
	f("a😀", (97*31+0xD83D)*31+0xDE00)
	f("\xff", 0xFFFD) // invalid UTF-8 byte counts as U+FFFD
	if TagsCode("TagA") != int64(JavaStringHashCode("TagA")) || TagsCode("") != 0 {
		t.Fatal("TagsCode")
	}
}

func TestCQEntry(t *testing.T) {
	e := CQEntry{CommitLogOffset: 0x0102030405060708, Size: 0x0A0B0C0D, TagsCode: -2}
	b := AppendCQEntry(nil, e)
	want := "\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d\xff\xff\xff\xff\xff\xff\xff\xfe"
	if string(b) != want {
		t.Fatalf("encoded %x", b)
	}
	got, err := DecodeCQEntry(b)
	if err != nil || got != e {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if _, err := DecodeCQEntry(b[:19]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short entry: %v", err)
	}
	if !(CQEntry{}).IsZero() || e.IsZero() {
		t.Fatal("IsZero")
	}
}
