package authn

// setupIntrospection wires RFC 7662 introspection when configured.
func (v *Verifier) setupIntrospection() error {
	if v.cfg.Introspection == nil {
		return nil
	}
	in, err := newIntrospector(&v.cfg, v.introspectionEndpoint)
	if err != nil {
		return err
	}
	v.intro = in
	return nil
}
