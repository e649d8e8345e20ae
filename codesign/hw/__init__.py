"""Hardware side of codesign: IP specs, device budgets, register map, cores and generators.

* :mod:`codesign.hw.spec` -- ``IPSpec`` / ``make_spec`` (lanes derived from a device budget).
* :mod:`codesign.hw.regmap` -- the one register-map definition of the OQA overlay.
* :mod:`codesign.hw.packing` -- packing of narrow integers into 64-bit words.
* :mod:`codesign.hw.cores` -- one module per IP core (golden, cycles, resources, templates).
* :mod:`codesign.hw.generator`, :mod:`codesign.hw.csim`, :mod:`codesign.hw.rtlsim`,
  :mod:`codesign.hw.flow` -- rendering, g++ C-sim, cocotb runs and the ``make ip`` flow.

Only NumPy and Jinja2 are needed to import this package; cocotb is imported lazily.
"""
