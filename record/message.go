package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"net/netip"
)

// RocketMQ commit-log constants (store/CommitLog.java, MessageDecoder, MessageSysFlag).
const (
	MagicV1    int32 = -626843481 // message, topic length in 1 byte
	MagicV2    int32 = -626843477 // message, topic length in 2 bytes
	MagicBlank int32 = -875286124 // end-of-file filler

	// MaxMessageSize is RocketMQ's default maxMessageSize (4 MiB).
	MaxMessageSize = 4 << 20
	// MaxMessageOverhead is the most a message's fixed fields, topic and properties can
	// add to its body: 4 MiB of body make a message of at most
	// MaxMessageSize+MaxMessageOverhead bytes.
	MaxMessageOverhead = fixedLenV6 + 2 + math.MaxInt16 + math.MaxInt16
	// EndFileMinBlankLength is the space a commit-log file always keeps for its BLANK
	// filler: a message is written only if at least this many bytes remain after it.
	EndFileMinBlankLength = 8
	// MinMessageSize is the size of the smallest v1 message (IPv4 hosts, empty topic,
	// body and properties).
	MinMessageSize = fixedLenV4

	SysFlagCompressed  int32 = 0x1
	SysFlagBornHostV6  int32 = 0x10
	SysFlagStoreHostV6 int32 = 0x20

	PropertyKeys    = "KEYS"     // space-separated message keys
	PropertyUniqKey = "UNIQ_KEY" // the client-generated message id
	PropertyTags    = "TAGS"     // the message's tag
	KeySeparator    = " "        // separates keys in KEYS
)

// Byte lengths: all fields from TOTALSIZE to the body length, plus the topic length
// byte (v1) and the properties length, for IPv4 and IPv6 hosts.
const (
	fixedLenV4 = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + 1 + 2
	fixedLenV6 = fixedLenV4 + 12 + 12
)

// Message is a RocketMQ message as the broker stores it in the commit log.
type Message struct {
	Topic            string
	QueueID          int32
	Flag             int32
	QueueOffset      int64 // index of the message in its consume queue
	PhysicalOffset   int64 // offset of the message in the whole commit log
	SysFlag          int32 // AppendMessage sets the host-family bits from BornHost/StoreHost
	BornTimestamp    int64 // ms
	BornHost         netip.AddrPort
	StoreTimestamp   int64 // ms
	StoreHost        netip.AddrPort
	ReconsumeTimes   int32
	PreparedTxOffset int64
	Body             []byte
	// Properties in file order. Names are non-empty and hold neither \x01 nor \x02;
	// values are non-empty and hold no \x02 (the separators of the encoding).
	Properties []Property
}

// Property is one message property.
type Property struct {
	Name, Value string
}

// Property returns the value of the last property called name, as RocketMQ's property
// map (where later entries overwrite earlier ones) would.
func (m *Message) Property(name string) (string, bool) {
	for i := len(m.Properties) - 1; i >= 0; i-- {
		if m.Properties[i].Name == name {
			return m.Properties[i].Value, true
		}
	}
	return "", false
}

// Keys returns the message's keys: the KEYS property split on spaces, empty parts left
// out (as the broker's IndexService skips them).
func (m *Message) Keys() []string {
	v, _ := m.Property(PropertyKeys)
	var keys []string
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ' ' {
			i++
		}
		if i > 0 {
			keys = append(keys, v[:i])
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return keys
}

// UniqKey returns the UNIQ_KEY property (the message id), or "".
func (m *Message) UniqKey() string {
	v, _ := m.Property(PropertyUniqKey)
	return v
}

// Tags returns the TAGS property, or "".
func (m *Message) Tags() string {
	v, _ := m.Property(PropertyTags)
	return v
}

// BodyCRC is the BODYCRC RocketMQ stores for body: CRC-32 (IEEE) & 0x7FFFFFFF.
func BodyCRC(body []byte) int32 {
	return int32(crc32.ChecksumIEEE(body) & 0x7FFFFFFF)
}

// EncodedSize returns the TOTALSIZE AppendMessage writes for m.
func EncodedSize(m *Message) (int, error) {
	plen, err := propertiesLen(m.Properties)
	if err != nil {
		return 0, err
	}
	return encodedSize(m, plen)
}

func encodedSize(m *Message, plen int) (int, error) {
	if len(m.Topic) > math.MaxInt16 {
		return 0, fmt.Errorf("encode message: topic of %d bytes is longer than %d", len(m.Topic), math.MaxInt16)
	}
	if plen > math.MaxInt16 {
		return 0, fmt.Errorf("encode message: properties of %d bytes are longer than %d", plen, math.MaxInt16)
	}
	n := fixedLenV4 + len(m.Topic) + plen
	if !hostIs4(m.BornHost) {
		n += 12
	}
	if !hostIs4(m.StoreHost) {
		n += 12
	}
	if len(m.Topic) > math.MaxInt8 {
		n++ // v2: 2-byte topic length
	}
	if len(m.Body) > math.MaxInt32-n {
		return 0, fmt.Errorf("encode message: body of %d bytes makes the message longer than %d", len(m.Body), math.MaxInt32)
	}
	return n + len(m.Body), nil
}

// hostIs4 reports whether a is stored as IPv4 (4 address bytes). The zero AddrPort is
// stored as 0.0.0.0:0.
func hostIs4(a netip.AddrPort) bool {
	return !a.Addr().IsValid() || a.Addr().Is4()
}

// AppendMessage appends m in the broker's store encoding to dst. It computes TOTALSIZE
// and BODYCRC, uses the v1 magic when the topic is at most 127 bytes and v2 otherwise,
// and sets SysFlag's BORNHOST_V6 and STOREHOST_V6 bits from the hosts' address families
// (4-in-6 addresses are stored as IPv6; zones are dropped).
func AppendMessage(dst []byte, m *Message) ([]byte, error) {
	plen, err := propertiesLen(m.Properties)
	if err != nil {
		return dst, err
	}
	size, err := encodedSize(m, plen)
	if err != nil {
		return dst, err
	}
	magic := MagicV1
	if len(m.Topic) > math.MaxInt8 {
		magic = MagicV2
	}
	sysFlag := m.SysFlag &^ (SysFlagBornHostV6 | SysFlagStoreHostV6)
	if !hostIs4(m.BornHost) {
		sysFlag |= SysFlagBornHostV6
	}
	if !hostIs4(m.StoreHost) {
		sysFlag |= SysFlagStoreHostV6
	}
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(size))
	dst = be.AppendUint32(dst, uint32(magic))
	dst = be.AppendUint32(dst, uint32(BodyCRC(m.Body)))
	dst = be.AppendUint32(dst, uint32(m.QueueID))
	dst = be.AppendUint32(dst, uint32(m.Flag))
	dst = be.AppendUint64(dst, uint64(m.QueueOffset))
	dst = be.AppendUint64(dst, uint64(m.PhysicalOffset))
	dst = be.AppendUint32(dst, uint32(sysFlag))
	dst = be.AppendUint64(dst, uint64(m.BornTimestamp))
	dst = appendHost(dst, m.BornHost)
	dst = be.AppendUint64(dst, uint64(m.StoreTimestamp))
	dst = appendHost(dst, m.StoreHost)
	dst = be.AppendUint32(dst, uint32(m.ReconsumeTimes))
	dst = be.AppendUint64(dst, uint64(m.PreparedTxOffset))
	dst = be.AppendUint32(dst, uint32(len(m.Body)))
	dst = append(dst, m.Body...)
	if magic == MagicV1 {
		dst = append(dst, byte(len(m.Topic)))
	} else {
		dst = be.AppendUint16(dst, uint16(len(m.Topic)))
	}
	dst = append(dst, m.Topic...)
	dst = be.AppendUint16(dst, uint16(plen))
	dst = appendProperties(dst, m.Properties)
	return dst, nil
}

func appendHost(dst []byte, a netip.AddrPort) []byte {
	if hostIs4(a) {
		ip := [4]byte{}
		if a.Addr().IsValid() {
			ip = a.Addr().As4()
		}
		dst = append(dst, ip[:]...)
	} else {
		ip := a.Addr().As16()
		dst = append(dst, ip[:]...)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(a.Port()))
}

// DecodeMessage decodes the message at the start of b and returns it with its size n
// (TOTALSIZE). b must hold the whole message.
//
// For a BLANK filler it returns ErrBlank and n = TOTALSIZE (the bytes left in the file;
// b need only hold its first 8 bytes). Every other failure wraps ErrCorrupt, or
// io.ErrUnexpectedEOF when b ends before the message does. The checks: a known magic,
// TOTALSIZE equal to the size the fields add up to, every length within TOTALSIZE, and
// BODYCRC. Body aliases b.
func DecodeMessage(b []byte) (Message, int, error) {
	var m Message
	if len(b) < 8 {
		return m, 0, fmt.Errorf("decode message: %d bytes, need 8 for size and magic: %w", len(b), errUnexpectedEOF)
	}
	be := binary.BigEndian
	size := int32(be.Uint32(b))
	magic := int32(be.Uint32(b[4:]))
	switch magic {
	case MagicBlank:
		if size < 8 {
			return m, 0, fmt.Errorf("decode message: %w: BLANK of %d bytes", ErrCorrupt, size)
		}
		return m, int(size), ErrBlank
	case MagicV1, MagicV2:
	default:
		return m, 0, fmt.Errorf("decode message: %w: bad magic %#08x", ErrCorrupt, uint32(magic))
	}
	if size < MinMessageSize {
		return m, 0, fmt.Errorf("decode message: %w: TOTALSIZE %d is below the minimum %d", ErrCorrupt, size, MinMessageSize)
	}
	if int64(size) > int64(len(b)) {
		return m, 0, fmt.Errorf("decode message: TOTALSIZE %d but %d bytes available: %w", size, len(b), errUnexpectedEOF)
	}
	c := cursor{b: b[:size], off: 8}
	crc := c.i32()
	m.QueueID = c.i32()
	m.Flag = c.i32()
	m.QueueOffset = c.i64()
	m.PhysicalOffset = c.i64()
	m.SysFlag = c.i32()
	m.BornTimestamp = c.i64()
	m.BornHost = c.host(m.SysFlag&SysFlagBornHostV6 != 0)
	m.StoreTimestamp = c.i64()
	m.StoreHost = c.host(m.SysFlag&SysFlagStoreHostV6 != 0)
	m.ReconsumeTimes = c.i32()
	m.PreparedTxOffset = c.i64()
	bodyLen := c.i32()
	if c.err == nil && bodyLen < 0 {
		c.fail("negative body length %d", bodyLen)
	}
	m.Body = c.bytes(int(bodyLen))
	var topicLen int
	if magic == MagicV1 {
		topicLen = int(int8(c.u8()))
	} else {
		topicLen = int(int16(c.u16()))
	}
	if c.err == nil && topicLen < 0 {
		c.fail("negative topic length %d", topicLen)
	}
	m.Topic = string(c.bytes(topicLen))
	propLen := int(int16(c.u16()))
	if c.err == nil && propLen < 0 {
		c.fail("negative properties length %d", propLen)
	}
	props := c.bytes(propLen)
	if c.err != nil {
		return Message{}, 0, fmt.Errorf("decode message: %w", c.err)
	}
	if c.off != len(c.b) {
		return Message{}, 0, fmt.Errorf("decode message: %w: TOTALSIZE %d but fields end at %d", ErrCorrupt, size, c.off)
	}
	if got := BodyCRC(m.Body); got != crc {
		return Message{}, 0, fmt.Errorf("decode message: %w: BODYCRC %#08x, body has %#08x", ErrCorrupt, uint32(crc), uint32(got))
	}
	m.Properties = parseProperties(props)
	return m, int(size), nil
}
