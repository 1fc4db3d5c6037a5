import { describe, expect, it } from 'vitest';
import { parseFault, faultToError } from '../../src/esxi/soap/faults.js';
import { MoRef, Typed, asArray, asObject, decodeBody, encodeCall, type Decoded } from '../../src/esxi/soap/xml.js';

const envelope = (body: string, xsiPrefix = 'xsi'): string =>
  `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:${xsiPrefix}="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;

describe('encodeCall', () => {
  it('writes the method, _this, typed values and arrays in order, escaping text', () => {
    const xml = encodeCall('RetrievePropertiesEx', new MoRef('PropertyCollector', 'ha-property-collector'), {
      specSet: {
        propSet: [{ type: 'VirtualMachine', all: false, pathSet: ['name', 'config.uuid'] }],
        objectSet: [{ obj: new MoRef('Folder', 'ha-folder-root'), skip: false, selectSet: [new Typed('TraversalSpec', { name: 'f', type: 'Folder', path: 'childEntity' })] }],
      },
      options: {},
      note: `a<b & "c" 'd'`,
      value: new Typed('xsd:string', 'x'),
    });
    expect(xml).toContain('<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">ha-property-collector</_this><specSet><propSet><type>VirtualMachine</type><all>false</all><pathSet>name</pathSet><pathSet>config.uuid</pathSet></propSet>');
    expect(xml).toContain('<obj type="Folder">ha-folder-root</obj><skip>false</skip><selectSet xsi:type="TraversalSpec"><name>f</name>');
    expect(xml).toContain('<options></options>');
    expect(xml).toContain('<note>a&#60;b &#38; &#34;c&#34; &#39;d&#39;</note>');
    expect(xml).toContain('<value xsi:type="xsd:string">x</value>');
    expect(xml.indexOf('<_this')).toBeLessThan(xml.indexOf('<specSet>'));
  });

  it('skips undefined and null fields', () => {
    expect(encodeCall('M', new MoRef('T', 'v'), { a: undefined, b: null, c: 1 })).toContain('<_this type="T">v</_this><c>1</c></M>');
  });
});

describe('decodeBody', () => {
  it('decodes references, ArrayOf values, xsi types under any prefix, and entities', () => {
    for (const prefix of ['xsi', 'XMLSchema-instance']) {
      const xml = envelope(
        `<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-9</obj>` +
          `<propSet><name>config.extraConfig</name><val ${prefix}:type="ArrayOfOptionValue"><OptionValue ${prefix}:type="OptionValue"><key>guestinfo.a</key><value ${prefix}:type="xsd:string">x&#34;y &amp; z</value></OptionValue></val></propSet>` +
          `<propSet><name>network</name><val ${prefix}:type="ArrayOfManagedObjectReference"><ManagedObjectReference type="Network">network-7</ManagedObjectReference></val></propSet>` +
          `<propSet><name>name</name><val ${prefix}:type="xsd:string">0042</val></propSet>` +
          `</objects><token>tok1</token></returnval></RetrievePropertiesExResponse>`,
        prefix,
      );
      const { name, value } = decodeBody(xml);
      expect(name).toBe('RetrievePropertiesExResponse');
      const returnval = asObject(value.returnval);
      expect(returnval.token).toBe('tok1');
      const objects = asArray(returnval.objects).map(asObject);
      expect(objects[0]?.obj).toEqual(new MoRef('VirtualMachine', 'vm-9'));
      const props = asArray(objects[0]?.propSet).map(asObject);
      const extra = asArray(props[0]?.val).map(asObject);
      expect(extra).toEqual([{ _type: 'OptionValue', key: 'guestinfo.a', value: 'x"y & z' }]);
      expect(props[1]?.val).toEqual([new MoRef('Network', 'network-7')]);
      expect(props[2]?.val).toBe('0042');
    }
  });

  it('returns an empty list for an empty ArrayOf value and keeps single list elements readable with asArray', () => {
    const xml = envelope(`<R xmlns="urn:vim25"><returnval><a xsi:type="ArrayOfString"></a><b><c>1</c></b></returnval></R>`);
    const returnval = asObject(decodeBody(xml).value.returnval);
    expect(returnval.a).toEqual([]);
    expect(asArray(returnval.b)).toEqual([{ c: '1' }]);
  });

  it('rejects a body that is not SOAP', () => {
    expect(() => decodeBody('<html><body>503</body></html>')).toThrow(/not a SOAP envelope/);
  });
});

describe('faults', () => {
  const fault = (type: string, prefix = 'xsi'): ReturnType<typeof parseFault> => {
    const xml = envelope(
      `<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login due to an incorrect user name or password.</faultstring><detail><${type}Fault xmlns="urn:vim25" ${prefix}:type="${type}"></${type}Fault></detail></soapenv:Fault>`,
      prefix,
    );
    return parseFault(decodeBody(xml).value, 'Login');
  };

  it('takes the fault type from the detail, not the localized text', () => {
    expect(fault('InvalidLogin').faultType).toBe('InvalidLogin');
    expect(fault('NotSupported', 'XMLSchema-instance').faultType).toBe('NotSupported');
  });

  it('maps fault types to error codes and exit codes', () => {
    expect(faultToError(fault('InvalidLogin'))).toMatchObject({ code: 'AUTH_FAILED', exitCode: 6 });
    expect(faultToError(fault('NotFound'))).toMatchObject({ code: 'NOT_FOUND', exitCode: 3 });
    expect(faultToError(fault('InvalidPowerState'))).toMatchObject({ code: 'INVALID_POWER_STATE', exitCode: 4 });
    expect(faultToError(fault('NotSupported'))).toMatchObject({ code: 'NOT_SUPPORTED', exitCode: 8 });
    expect(faultToError(fault('SomethingNew'))).toMatchObject({ code: 'HOST_FAULT', exitCode: 8 });
  });
});

describe('decodeBody markup', () => {
  it('ignores namespace declarations and primitive xsd types, and never touches text', () => {
    const text = 'note: <val xmlns:x="http://www.w3.org/2001/XMLSchema-instance" x:type="xsd:string"> stays';
    const xml = envelope(
      `<R xmlns="urn:vim25"><returnval><a xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="xsd:string">${text.replace(/</g, '&lt;').replace(/>/g, '&gt;')}</a>` +
        `<b xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ArrayOfString"><string>x</string></b><c xsi:type="xsd:int">7</c><d xsi:type="xsd:string"/></returnval></R>`,
    );
    const returnval = asObject(decodeBody(xml).value.returnval);
    expect(returnval.a).toBe(text);
    expect(returnval.b).toEqual(['x']);
    expect(returnval.c).toBe('7');
    expect(returnval.d).toBe('');
  });

  it('takes CDATA literally, skips comments and processing instructions, and normalizes line ends', () => {
    const xml = envelope(
      `<R xmlns="urn:vim25"><returnval><a><![CDATA[<b>&amp;</b>]]></a><b>x<!-- <c>y</c> -->z<?pi data?></b><c>one\r\ntwo\rthree&#13;</c>` +
        `<d>&#65;&#x42;&lt;&unknown;&amp;lt;</d><e> </e><f></f><g/><h /></returnval></R>`,
    );
    expect(decodeBody(xml).value.returnval).toEqual({ a: '<b>&amp;</b>', b: 'xz', c: 'one\ntwo\nthree\r', d: 'AB<&unknown;&lt;', e: ' ', f: '', g: '', h: '' });
  });

  it('reads attributes in either quote, with whitespace around them', () => {
    const xml = envelope(
      `<R xmlns="urn:vim25"><returnval><obj\ttype = 'Virtual&apos;Machine'\r\n>vm-1</obj><val\n  id="a>b"  xsi:type='OptionValue' ><key>k</key></val>` +
        `<ref xsi:type="ManagedObjectReference" type="Datastore" /></returnval></R>`,
    );
    expect(decodeBody(xml).value.returnval).toEqual({ obj: new MoRef("Virtual'Machine", 'vm-1'), val: { _type: 'OptionValue', key: 'k' }, ref: new MoRef('Datastore', '') });
  });

  it('keeps an element with children an object (text between them ignored), and a reference its text', () => {
    const xml = envelope(`<R xmlns="urn:vim25"><returnval>\n  <a>1</a> stray \n  <b xsi:type="Typed"> <c>2</c> </b><ref type="Folder">group-<x/>d1</ref></returnval></R>`);
    expect(decodeBody(xml).value.returnval).toEqual({ a: '1', b: { _type: 'Typed', c: '2' }, ref: new MoRef('Folder', 'group-d1') });
  });

  it('makes repeated siblings a plain list, apart from ArrayOf values', () => {
    const xml = envelope(
      `<R xmlns="urn:vim25"><returnval><val xsi:type="ArrayOfString"><string>a</string><string>b</string></val><val xsi:type="ArrayOfString"/>` +
        `<val xsi:type="ArrayOfString"><string>c</string></val><one xsi:type="ArrayOfInt"><int>1</int></one></returnval></R>`,
    );
    const returnval = asObject(decodeBody(xml).value.returnval);
    expect(returnval.val).toEqual([['a', 'b'], [], ['c']]);
    expect(returnval.one).toEqual(['1']);
    expect(Object.keys(returnval.val as object)).toEqual(['0', '1', '2']);
    expect(Object.getPrototypeOf(returnval.val)).toBe(Array.prototype);
  });

  it('keeps names inherited from Object.prototype as plain fields', () => {
    const xml = envelope(`<R xmlns="urn:vim25"><returnval><constructor>1</constructor><__proto__>2</__proto__><toString>3</toString><toString>4</toString></returnval></R>`);
    const returnval = asObject(decodeBody(xml).value.returnval);
    expect(Object.getPrototypeOf(returnval)).toBe(Object.prototype);
    expect(Object.entries(returnval)).toEqual([
      ['constructor', '1'],
      ['__proto__', '2'],
      ['toString', ['3', '4']],
    ]);
  });

  it('skips a byte-order mark, the declaration, comments and a SOAP header, and wraps a body child that is not an object', () => {
    const xml =
      '\uFEFF<?xml version="1.0"?>\n<!-- answer -->\n<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header><id>7</id></S:Header>' +
      '<S:Body><CreateVM_TaskResponse xmlns="urn:vim25"><returnval type="Task">task-1</returnval></CreateVM_TaskResponse><Ignored>x</Ignored></S:Body></S:Envelope>\n<?pi after?>\n';
    expect(decodeBody(xml)).toEqual({ name: 'CreateVM_TaskResponse', value: { returnval: new MoRef('Task', 'task-1') } });
    expect(decodeBody(envelope('<R type="Task">task-2</R>'))).toEqual({ name: 'R', value: { value: new MoRef('Task', 'task-2') } });
    expect(decodeBody(envelope('<R xsi:type="ArrayOfString"><string>s</string></R>'))).toEqual({ name: 'R', value: { value: ['s'] } });
    expect(decodeBody(envelope('<R>text</R>'))).toEqual({ name: 'R', value: { value: 'text' } });
  });

  it('tells a response that is not SOAP from an empty body', () => {
    const soapenv = 'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"';
    for (const xml of ['', '  ', '<!DOCTYPE html><html><body>502 Bad Gateway</body></html>', `<soapenv:Envelope ${soapenv}><soapenv:Header/></soapenv:Envelope>`, `<soapenv:Envelope ${soapenv}/>`]) {
      expect(() => decodeBody(xml), xml).toThrow('the response is not a SOAP envelope');
    }
    for (const xml of [envelope(''), envelope('\n  <!-- nothing -->\n'), `<soapenv:Envelope ${soapenv}><soapenv:Body/></soapenv:Envelope>`]) {
      expect(() => decodeBody(xml), xml).toThrow('the SOAP body is empty');
    }
  });
});

describe('decodeBody on malformed XML', () => {
  const messageOf = (xml: string): string => {
    try {
      decodeBody(xml);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('decodeBody accepted malformed XML');
  };
  const response = (inner: string): string => envelope(`<R xmlns="urn:vim25"><returnval>${inner}</returnval></R>`);

  it('names the problem and the offset where it is', () => {
    const complete = response('<token>abc</token>');
    const truncated = complete.slice(0, complete.indexOf('abc') + 2);
    expect(messageOf(truncated)).toBe(`malformed XML at offset ${truncated.length}: expected </token>`);

    const mismatched = response('<name>x</nam>');
    expect(messageOf(mismatched)).toBe(`malformed XML at offset ${mismatched.indexOf('</nam>')}: expected </name>`);
    const unclosed = response('<name>x');
    expect(messageOf(unclosed)).toBe(`malformed XML at offset ${unclosed.indexOf('</returnval>')}: expected </name>`);

    const openTag = envelope('<R xmlns="urn:vim25"><returnval');
    expect(messageOf(openTag.slice(0, openTag.indexOf('<returnval') + 10))).toBe(`malformed XML at offset ${openTag.indexOf('<returnval')}: unterminated start tag <returnval`);
    const unquoted = response('<val xsi:type="xsd:string>x</val>');
    expect(messageOf(unquoted)).toBe(`malformed XML at offset ${unquoted.indexOf('"xsd:string>')}: unterminated value of the attribute xsi:type`);
    const noValue = response('<val checked>x</val>');
    expect(messageOf(noValue)).toBe(`malformed XML at offset ${noValue.indexOf('>x</val>')}: expected = after the attribute checked`);
    const bareValue = response('<val a=1>x</val>');
    expect(messageOf(bareValue)).toBe(`malformed XML at offset ${bareValue.indexOf('1>x')}: expected a quoted value for the attribute a`);
    const noName = response('< val>x</val>');
    expect(messageOf(noName)).toBe(`malformed XML at offset ${noName.indexOf('< val')}: expected an element name after <`);
    const badChar = response('<val "x">x</val>');
    expect(messageOf(badChar)).toBe(`malformed XML at offset ${badChar.indexOf('"x"')}: unexpected "\\"" in the start tag <val>`);

    const comment = response('<a>x<!-- never closed</a>');
    expect(messageOf(comment)).toBe(`malformed XML at offset ${comment.indexOf('<!--')}: unterminated comment`);
    const cdata = response('<a><![CDATA[never closed</a>');
    expect(messageOf(cdata)).toBe(`malformed XML at offset ${cdata.indexOf('<![CDATA[')}: unterminated CDATA section`);
    const instruction = envelope('<R><?pi never closed</R>');
    expect(messageOf(instruction.slice(0, instruction.indexOf('</R>')))).toBe(`malformed XML at offset ${instruction.indexOf('<?pi')}: unterminated processing instruction`);
    const doctype = response('<a><!DOCTYPE a></a>');
    expect(messageOf(doctype)).toBe(`malformed XML at offset ${doctype.indexOf('<!DOCTYPE')}: expected a comment or a CDATA section after <!`);
  });

  it('refuses text or elements outside the root', () => {
    expect(messageOf(`junk${response('')}`)).toBe('malformed XML at offset 0: text before the root element');
    const before = `<?xml version="1.0"?> x ${response('')}`;
    expect(messageOf(before)).toBe(`malformed XML at offset ${before.indexOf('x <')}: text before the root element`);
    const after = `${response('')}\n junk`;
    expect(messageOf(after)).toBe(`malformed XML at offset ${after.indexOf('junk')}: content after the root element`);
    const second = `${response('')}<other/>`;
    expect(messageOf(second)).toBe(`malformed XML at offset ${second.indexOf('<other/>')}: content after the root element`);
  });

  it('bounds the nesting depth', () => {
    const nested = (depth: number): string => envelope(`<R>${'<a>'.repeat(depth)}x${'</a>'.repeat(depth)}</R>`);
    let value: Decoded | undefined = decodeBody(nested(250)).value.a;
    for (let depth = 1; depth < 250; depth++) value = asObject(value).a;
    expect(value).toBe('x');
    const tooDeep = nested(300);
    // Counting the envelope as depth 0, the body is 1, R is 2 and the 255th <a> is 257.
    const offset = tooDeep.indexOf('<a>') + 254 * 3;
    expect(messageOf(tooDeep)).toBe(`malformed XML at offset ${offset}: elements nested more than 256 deep`);
  });
});
