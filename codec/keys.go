package codec

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tierd/tierd/segment"
)

// KeySize is the size of a key-encryption key: AES-256.
const KeySize = 32

// KeyRing holds the key-encryption keys (KEKs) of a key file. The last key encrypts new
// objects' data keys; every key decrypts. A KeyRing is immutable and safe for concurrent use.
type KeyRing struct {
	path string
	keys []kek // in file order: the last is the newest
}

type kek struct {
	id   string
	aead cipher.AEAD
}

// ErrKey is wrapped by every error about a missing or wrong key.
var ErrKey = errors.New("codec: key")

// LoadKeyFile reads a key file: one key a line, "ID BASE64" where BASE64 is the standard
// encoding of 32 random bytes; blank lines and lines starting with # are ignored. The last
// key encrypts. `tierd keygen ID` prints a new line.
func LoadKeyFile(path string) (*KeyRing, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open key file %q: %w", path, err)
	}
	defer f.Close()
	k, err := ParseKeys(f, path)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// ParseKeys reads key lines from r; name names r in errors.
func ParseKeys(r io.Reader, name string) (*KeyRing, error) {
	k := &KeyRing{path: name}
	sc := bufio.NewScanner(r)
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("key file %s line %d: want \"ID BASE64\" (tierd keygen ID prints one), got %d fields", name, n, len(fields))
		}
		id := fields[0]
		if err := checkKeyID(id); err != nil {
			return nil, fmt.Errorf("key file %s line %d: %w", name, n, err)
		}
		if prev, ok := seen[id]; ok {
			return nil, fmt.Errorf("key file %s line %d: key id %q already on line %d", name, n, id, prev)
		}
		seen[id] = n
		raw, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil || len(raw) != KeySize {
			return nil, fmt.Errorf("key file %s line %d: key %q is not the base64 of %d bytes", name, n, id, KeySize)
		}
		aead, err := newGCM(raw)
		if err != nil {
			return nil, fmt.Errorf("key file %s line %d: %w", name, n, err)
		}
		k.keys = append(k.keys, kek{id: id, aead: aead})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read key file %s: %w", name, err)
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("key file %s holds no key: add a line made by `tierd keygen ID`", name)
	}
	return k, nil
}

// NewKeyLine returns a key file line "ID BASE64" with a new random key.
func NewKeyLine(id string) (string, error) {
	if err := checkKeyID(id); err != nil {
		return "", err
	}
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("random key: %w", err)
	}
	return id + " " + base64.StdEncoding.EncodeToString(raw), nil
}

// checkKeyID checks a key id: 1 to 32 of [A-Za-z0-9._-].
func checkKeyID(id string) error {
	if id == "" || len(id) > maxKeyIDLen {
		return fmt.Errorf("key id %q must be 1 to %d characters", id, maxKeyIDLen)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("key id %q: only letters, digits, '.', '_' and '-'", id)
		}
	}
	return nil
}

// Newest returns the id of the key that encrypts.
func (k *KeyRing) Newest() string { return k.keys[len(k.keys)-1].id }

// IDs returns the key ids in file order.
func (k *KeyRing) IDs() []string {
	ids := make([]string, len(k.keys))
	for i, kk := range k.keys {
		ids[i] = kk.id
	}
	return ids
}

func (k *KeyRing) get(id string) (kek, bool) {
	for _, kk := range k.keys {
		if kk.id == id {
			return kk, true
		}
	}
	return kek{}, false
}

// wrapAAD is what a wrapped data key is bound to: the header's first fields (format,
// compression, frame size, size, object id, nonce scheme), the wrapping key's id and the
// object's key, so a wrapped key can be moved to no other object or name.
func wrapAAD(hdr []byte, keyID string, key segment.Key) []byte {
	aad := make([]byte, 0, aadPrefixLen+2+len(keyID)+len(key))
	aad = append(aad, hdr[:aadPrefixLen]...)
	aad = append(aad, byte(len(keyID)))
	aad = append(aad, keyID...)
	aad = binary.BigEndian.AppendUint16(aad, uint16(len(key)))
	return append(aad, key...)
}

// wrap encrypts dataKey with the key id under aad.
func (k *KeyRing) wrap(id string, dataKey []byte, aad []byte) (nonce [wrapNonceSize]byte, wrapped [wrappedKeySize]byte, err error) {
	kk, ok := k.get(id)
	if !ok {
		return nonce, wrapped, fmt.Errorf("%w %q is not in key file %s", ErrKey, id, k.path)
	}
	if _, err := rand.Read(nonce[:]); err != nil {
		return nonce, wrapped, fmt.Errorf("random nonce: %w", err)
	}
	out := kk.aead.Seal(wrapped[:0], nonce[:], dataKey, aad)
	if len(out) != wrappedKeySize {
		panic("BUG: codec: wrapped key size")
	}
	return nonce, wrapped, nil
}

// unwrap decrypts a data key wrapped by key id.
func (k *KeyRing) unwrap(id string, nonce [wrapNonceSize]byte, wrapped [wrappedKeySize]byte, aad []byte) ([]byte, error) {
	kk, ok := k.get(id)
	if !ok {
		return nil, fmt.Errorf("%w %q is not in key file %s (it holds %s): add the key back to read this object",
			ErrKey, id, k.path, strings.Join(k.IDs(), ", "))
	}
	dk, err := kk.aead.Open(nil, nonce[:], wrapped[:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w %q of key file %s does not open this object's data key: the key's bytes are not the ones it was encrypted with, or the object was altered", ErrKey, id, k.path)
	}
	return dk, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("AES: %w", err)
	}
	return cipher.NewGCM(block)
}
