package classify

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"slices"
	"time"
)

// Artifact format, version 1. All integers and floats little-endian.
//
//	magic      4 bytes  "ATRM"
//	version    uint32   1
//	metaLen    uint32   length of the metadata
//	metadata   metaLen bytes of JSON (Metadata: feature settings, fields
//	           with labels and calibration, training summary, held-out
//	           metrics)
//	ncol       uint32   number of kept hash buckets (feature columns)
//	buckets    ncol × uint32, strictly increasing, < 2^features.hash_bits
//	idf        ncol × float32
//	per field, in metadata order, K = len(labels):
//	  weights  ncol × K float32 (column-major by feature: the K weights of a
//	           feature are adjacent)
//	  bias     K float32
//	created    int64    Unix nanoseconds
//	hash       32 bytes SHA-256 of every byte before created
//
// The hash covers weights and metadata but not the creation time, so
// retraining on the same data with the same seed gives the same hash; its
// hex form is the model ID. Load verifies it, so any corruption is caught.
const (
	formatMagic   = "ATRM"
	formatVersion = 1
	maxMetaBytes  = 64 << 20
	maxWeights    = 1 << 28 // 1 GiB of float32: far above any sane model
	maxLabels     = 1 << 16
)

// ErrCorrupt wraps every structural problem Load finds.
var ErrCorrupt = errors.New("classify: corrupt model artifact")

// writeBody writes everything the hash covers.
func (m *Model) writeBody(w io.Writer) error {
	meta, err := json.Marshal(&m.meta)
	if err != nil {
		return fmt.Errorf("classify: encode metadata: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var hdr [12]byte
	copy(hdr[:4], formatMagic)
	binary.LittleEndian.PutUint32(hdr[4:], formatVersion)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(meta)))
	bw.Write(hdr[:])
	bw.Write(meta)
	var b4 [4]byte
	binary.LittleEndian.PutUint32(b4[:], uint32(len(m.buckets)))
	bw.Write(b4[:])
	for _, b := range m.buckets {
		binary.LittleEndian.PutUint32(b4[:], b)
		bw.Write(b4[:])
	}
	writeFloats(bw, m.vec.idf)
	for i := range m.fields {
		writeFloats(bw, m.fields[i].W)
		writeFloats(bw, m.fields[i].B)
	}
	return bw.Flush()
}

func writeFloats(w *bufio.Writer, fs []float32) {
	var b4 [4]byte
	for _, f := range fs {
		binary.LittleEndian.PutUint32(b4[:], math.Float32bits(f))
		w.Write(b4[:])
	}
}

// seal sets the creation time and computes the content hash (model ID).
func (m *Model) seal(created time.Time) error {
	h := sha256.New()
	if err := m.writeBody(h); err != nil {
		return err
	}
	m.id = hex.EncodeToString(h.Sum(nil))
	m.created = created.UTC()
	return nil
}

// Save writes the model artifact (see the format above).
func (m *Model) Save(w io.Writer) error {
	h := sha256.New()
	if err := m.writeBody(io.MultiWriter(w, h)); err != nil {
		return fmt.Errorf("classify: save model: %w", err)
	}
	var tr [8 + sha256.Size]byte
	binary.LittleEndian.PutUint64(tr[:8], uint64(m.created.UnixNano()))
	copy(tr[8:], h.Sum(nil))
	if _, err := w.Write(tr[:]); err != nil {
		return fmt.Errorf("classify: save model: %w", err)
	}
	return nil
}

// Load reads and validates a model artifact. A truncated, corrupted or
// foreign file gives an error wrapping ErrCorrupt (or the reader's error);
// allocation grows with the bytes actually read, so a forged size cannot
// exhaust memory.
func Load(r io.Reader) (*Model, error) {
	h := sha256.New()
	br := bufio.NewReaderSize(r, 1<<16)
	lr := &loadReader{r: io.TeeReader(br, h)}
	m, err := load(lr, h)
	if err != nil {
		return nil, err
	}
	return m, nil
}

type loadReader struct {
	r   io.Reader
	buf [4]byte
}

func (l *loadReader) full(p []byte, what string) error {
	if _, err := io.ReadFull(l.r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: truncated in %s", ErrCorrupt, what)
		}
		return fmt.Errorf("classify: read model: %w", err)
	}
	return nil
}

func (l *loadReader) u32(what string) (uint32, error) {
	if err := l.full(l.buf[:], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(l.buf[:]), nil
}

// floats reads n float32 in chunks, so memory follows the data present.
func (l *loadReader) floats(n int, what string) ([]float32, error) {
	out := make([]float32, 0, min(n, 1<<16))
	var chunk [4096]byte
	for len(out) < n {
		k := min(n-len(out), len(chunk)/4)
		if err := l.full(chunk[:4*k], what); err != nil {
			return nil, err
		}
		for i := range k {
			f := math.Float32frombits(binary.LittleEndian.Uint32(chunk[4*i:]))
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return nil, fmt.Errorf("%w: non-finite value in %s", ErrCorrupt, what)
			}
			out = append(out, f)
		}
	}
	return out, nil
}

func load(lr *loadReader, h hash.Hash) (*Model, error) {
	var hdr [12]byte
	if err := lr.full(hdr[:], "header"); err != nil {
		return nil, err
	}
	if string(hdr[:4]) != formatMagic {
		return nil, fmt.Errorf("%w: bad magic %q (not a model artifact)", ErrCorrupt, hdr[:4])
	}
	if v := binary.LittleEndian.Uint32(hdr[4:]); v != formatVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrCorrupt, v, formatVersion)
	}
	metaLen := binary.LittleEndian.Uint32(hdr[8:])
	if metaLen > maxMetaBytes {
		return nil, fmt.Errorf("%w: metadata length %d exceeds %d", ErrCorrupt, metaLen, maxMetaBytes)
	}
	var metaBuf bytes.Buffer
	if n, err := io.CopyN(&metaBuf, lr.r, int64(metaLen)); err != nil {
		if n < int64(metaLen) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil, fmt.Errorf("%w: truncated in metadata", ErrCorrupt)
		}
		return nil, fmt.Errorf("classify: read model: %w", err)
	}
	m := &Model{}
	if err := json.Unmarshal(metaBuf.Bytes(), &m.meta); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	if err := m.meta.validate(); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	fo := m.meta.Features
	size := 1 << fo.HashBits
	ncol32, err := lr.u32("column count")
	if err != nil {
		return nil, err
	}
	ncol := int(ncol32)
	if ncol > size {
		return nil, fmt.Errorf("%w: %d columns exceed hash space %d", ErrCorrupt, ncol, size)
	}
	total := 0
	for _, f := range m.meta.Fields {
		total += (ncol + 1) * len(f.Labels)
	}
	if total > maxWeights {
		return nil, fmt.Errorf("%w: %d weights exceed %d", ErrCorrupt, total, maxWeights)
	}
	m.buckets = make([]uint32, 0, min(ncol, 1<<16))
	for i := 0; i < ncol; i++ {
		b, err := lr.u32("buckets")
		if err != nil {
			return nil, err
		}
		if int(b) >= size || (i > 0 && b <= m.buckets[i-1]) {
			return nil, fmt.Errorf("%w: bucket %d out of order or range", ErrCorrupt, i)
		}
		m.buckets = append(m.buckets, b)
	}
	if m.vec.idf, err = lr.floats(ncol, "idf"); err != nil {
		return nil, err
	}
	for i := range m.meta.Fields {
		K := len(m.meta.Fields[i].Labels)
		W, err := lr.floats(ncol*K, "weights of "+m.meta.Fields[i].Name)
		if err != nil {
			return nil, err
		}
		B, err := lr.floats(K, "bias of "+m.meta.Fields[i].Name)
		if err != nil {
			return nil, err
		}
		m.fields = append(m.fields, fieldModel{info: &m.meta.Fields[i], W: W, B: B})
	}
	sum := h.Sum(nil)
	var tr [8 + sha256.Size]byte
	if err := lr.full(tr[:], "trailer"); err != nil {
		return nil, err
	}
	if !bytes.Equal(tr[8:], sum) {
		return nil, fmt.Errorf("%w: content hash mismatch", ErrCorrupt)
	}
	m.id = hex.EncodeToString(sum)
	m.created = time.Unix(0, int64(binary.LittleEndian.Uint64(tr[:8]))).UTC()
	m.vec.colOf = make([]int32, size)
	for b := range m.vec.colOf {
		m.vec.colOf[b] = -1
	}
	for c, b := range m.buckets {
		m.vec.colOf[b] = int32(c)
	}
	m.vec.charWeight = float32(fo.CharWeight)
	return m, nil
}

// validate checks the metadata a loaded model depends on.
func (md *Metadata) validate() error {
	if err := md.Features.validate(); err != nil {
		return err
	}
	if len(md.Fields) == 0 {
		return errors.New("no fields")
	}
	seen := map[string]bool{}
	for _, f := range md.Fields {
		if !slices.Contains(Fields, f.Name) || seen[f.Name] {
			return fmt.Errorf("field %q unknown or repeated", f.Name)
		}
		seen[f.Name] = true
		K := len(f.Labels)
		if K == 0 || K > maxLabels {
			return fmt.Errorf("field %s: %d labels", f.Name, K)
		}
		if f.MultiLabel != (f.Name == FieldTags) {
			return fmt.Errorf("field %s: multi-label flag wrong", f.Name)
		}
		if f.MultiLabel {
			if len(f.PlattA) != K || len(f.PlattB) != K || len(f.TagThresholds) != K {
				return fmt.Errorf("field %s: calibration of %d tags incomplete", f.Name, K)
			}
		} else if !(f.Temperature > 0) || math.IsInf(f.Temperature, 0) {
			return fmt.Errorf("field %s: temperature %v", f.Name, f.Temperature)
		}
	}
	return nil
}
