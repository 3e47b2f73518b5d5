package freshdesk

// The hand-written decoder for Ticket, the type on the hot path of every
// view, update, list and search call. encoding/json spends most of its time
// validating and unquoting the long description strings byte by byte; this
// decoder scans strings eight bytes at a time, dispatches keys with a switch
// instead of reflection, and parses the fixed-layout timestamps Freshdesk
// sends without going through time.Parse. Semantics are encoding/json's
// (see jsondec.go); FuzzTicketDecoderMatchesStd compares both.

import (
	"encoding/json"
	"fmt"
	"time"
)

// UnmarshalJSON decodes a ticket with the fast decoder. It accepts and
// rejects exactly what encoding/json would for the plain struct.
func (t *Ticket) UnmarshalJSON(b []byte) error {
	d := jsonReader{b: b}
	d.ws()
	if err := d.ticket(t); err != nil {
		return err
	}
	return d.end()
}

// decodeTickets decodes a JSON array of tickets (a list page).
func decodeTickets(b []byte, p *[]Ticket) error {
	d := jsonReader{b: b}
	d.ws()
	if err := d.setTickets(p); err != nil {
		return err
	}
	return d.end()
}

func (d *jsonReader) ticket(t *Ticket) error {
	switch d.peek() {
	case 'n':
		return d.lit("null")
	case '{':
	default:
		return d.mismatch("Ticket", "ticket")
	}
	if err := d.enter(); err != nil {
		return err
	}
	var fold [32]byte
	for n := 0; ; {
		more, err := d.next('}', &n)
		if err != nil || !more {
			return err
		}
		k, err := d.key()
		if err != nil {
			return err
		}
		known, err := t.field(d, string(k))
		if err == nil && !known {
			if name, ok := ticketFolded[string(appendFolded(fold[:0], k))]; ok {
				_, err = t.field(d, name)
			} else {
				_, err = d.skip()
			}
		}
		if err != nil {
			return err
		}
	}
}

func (d *jsonReader) attachment(a *Attachment) error {
	switch d.peek() {
	case 'n':
		return d.lit("null")
	case '{':
	default:
		return d.mismatch("Attachment", "attachments")
	}
	if err := d.enter(); err != nil {
		return err
	}
	var fold [32]byte
	for n := 0; ; {
		more, err := d.next('}', &n)
		if err != nil || !more {
			return err
		}
		k, err := d.key()
		if err != nil {
			return err
		}
		known, err := a.field(d, string(k))
		if err == nil && !known {
			if name, ok := attachmentFolded[string(appendFolded(fold[:0], k))]; ok {
				_, err = a.field(d, name)
			} else {
				_, err = d.skip()
			}
		}
		if err != nil {
			return err
		}
	}
}

// setTickets and setAttachments follow encoding/json's slice rules: null
// gives nil, [] an empty slice, elements are decoded into the existing
// backing array.
func (d *jsonReader) setTickets(p *[]Ticket) error {
	return decodeSlice(d, p, "[]Ticket", "tickets", d.ticket)
}

func (d *jsonReader) setAttachments(p *[]Attachment) error {
	return decodeSlice(d, p, "[]Attachment", "attachments", d.attachment)
}

func decodeSlice[T any](d *jsonReader, p *[]T, typ, field string, elem func(*T) error) error {
	switch d.peek() {
	case 'n':
		*p = nil
		return d.lit("null")
	case '[':
	default:
		return d.mismatch(typ, field)
	}
	if err := d.enter(); err != nil {
		return err
	}
	s := *p
	i := 0
	for n := 0; ; {
		more, err := d.next(']', &n)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if i < cap(s) {
			s = s[:i+1]
		} else {
			var zero T
			s = append(s[:i], zero)
		}
		if err := elem(&s[i]); err != nil {
			return err
		}
		i++
	}
	if i == 0 {
		s = []T{}
	} else {
		s = s[:i]
	}
	*p = s
	return nil
}

// setTime decodes a timestamp. The layout Freshdesk sends,
// "2006-01-02T15:04:05Z", is parsed directly; anything else goes to
// time.Time.UnmarshalJSON, as encoding/json would.
func (d *jsonReader) setTime(p *time.Time) error {
	start := d.i
	if d.peek() == '"' {
		s, complex, err := d.scanString()
		if err != nil {
			return err
		}
		if !complex {
			if t, ok := parseUTCSeconds(s); ok {
				*p = t
				return nil
			}
		}
	} else if _, err := d.skip(); err != nil {
		return err
	}
	return p.UnmarshalJSON(d.b[start:d.i])
}

func (d *jsonReader) setTimePtr(p **time.Time) error {
	if null, err := d.isNull(); null || err != nil {
		*p = nil
		return err
	}
	if *p == nil {
		*p = new(time.Time)
	}
	return d.setTime(*p)
}

// parseUTCSeconds parses exactly "YYYY-MM-DDTHH:MM:SSZ" with in-range
// fields, giving the same Time as time.Parse(time.RFC3339, s). It reports
// false for anything else.
func parseUTCSeconds(s []byte) (time.Time, bool) {
	if len(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(i, n int) int {
		v := 0
		for _, c := range s[i : i+n] {
			if c < '0' || c > '9' {
				ok = false
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if !ok || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// setRaw keeps a value's bytes, as json.RawMessage.UnmarshalJSON does
// (null included).
func (d *jsonReader) setRaw(p *json.RawMessage) error {
	raw, err := d.skip()
	if err != nil {
		return err
	}
	*p = append((*p)[0:0], raw...)
	return nil
}

// setStd decodes a rarely present value (include=stats, include=requester)
// with encoding/json, after validating it in place.
func setStd[T any](d *jsonReader, p *T) error {
	raw, err := d.skip()
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, p)
}

// setCustomFields decodes custom_fields with CustomFields' rules: integers
// as int64, other numbers as float64, arrays and objects kept raw.
func (d *jsonReader) setCustomFields(p *CustomFields) error {
	switch d.peek() {
	case 'n':
		*p = nil
		return d.lit("null")
	case '{':
	default:
		return d.mismatch("map[string]any", "custom_fields")
	}
	if err := d.enter(); err != nil {
		return err
	}
	m := make(CustomFields)
	for n := 0; ; {
		more, err := d.next('}', &n)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		k, err := d.key()
		if err != nil {
			return err
		}
		key := string(k)
		var v any
		switch c := d.peek(); {
		case c == 'n':
			err = d.lit("null")
		case c == 't':
			v, err = true, d.lit("true")
		case c == 'f':
			v, err = false, d.lit("false")
		case c == '"':
			v, err = d.str()
		case c == '[' || c == '{':
			var raw []byte
			if raw, err = d.skip(); err == nil {
				v = append(json.RawMessage(nil), raw...)
			}
		case c == '-' || isDigit(c):
			var num []byte
			if num, err = d.number(); err == nil {
				if v, err = decodeScalar(num); err != nil {
					err = fmt.Errorf("custom field %q: %w", key, err)
				}
			}
		default:
			_, err = d.skip() // a syntax error
		}
		if err != nil {
			return err
		}
		m[key] = v
	}
	*p = m
	return nil
}
