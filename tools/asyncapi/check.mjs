// Checks schemas/asyncapi.yaml with the AsyncAPI parser.
//
//   node tools/asyncapi/check.mjs [path/to/asyncapi.yaml]
//
// Parses the document with @asyncapi/parser, resolving the relative `$ref`s
// to the JSON Schema files beside it, and checks what the parser cannot:
// that every payload schema in the format
// `application/schema+json;version=draft-2020-12` is a valid draft 2020-12
// schema, and that every message example fits its payload and headers
// schemas. Every problem (and every parser diagnostic of severity error) is
// printed to stderr and the exit status is 1; parser warnings are printed
// but do not fail the check. On success, a JSON summary of the document goes
// to stdout for tests/asyncapi.rs:
//
//   {"asyncapi": "3.0.0", "servers": {"<id>": {"host", "protocol", "protocolVersion"}},
//    "channels": {"<id>": {"address", "amqp": <channel binding>, "parameters": {"<name>": {"enum"}},
//                          "messages": [{"id", "name", "title", "contentType", "schemaFormat",
//                                        "payloadSchemaId", "headers": <schema>, "examples": [...]}]}},
//    "operations": {"<id>": {"action", "channel", "messages": ["<id>"], "amqp": <operation binding>}}}

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import parserPackage from '@asyncapi/parser';
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const { Parser, fromFile, DiagnosticSeverity } = parserPackage;

/** The schema format the document uses for the JSON Schema files (draft 2020-12). */
const JSON_SCHEMA_2020 = 'application/schema+json;version=draft-2020-12';

const here = path.dirname(fileURLToPath(import.meta.url));
const documentPath = path.resolve(process.argv[2] ?? path.join(here, '..', '..', 'schemas', 'asyncapi.yaml'));

const problems = [];
const where = (p) => (Array.isArray(p) && p.length ? p.join('.') : '(document)');

function ajv2020() {
  const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: true });
  addFormats(ajv);
  return ajv;
}

function ajvAsyncApiSchema() {
  // AsyncAPI Schema Objects are a superset of JSON Schema draft-07.
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: true });
  addFormats(ajv);
  return ajv;
}

function ajvErrors(errors) {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
}

/**
 * A schema parser for JSON Schema draft 2020-12, which @asyncapi/parser does
 * not know (it knows draft-07). It receives the schema with its references
 * resolved, checks it against the draft 2020-12 meta-schema and compiles it.
 */
const jsonSchema2020Parser = {
  getMimeTypes: () => [JSON_SCHEMA_2020],
  async validate(input) {
    return check2020(input.data).map((message) => ({ message, path: input.path }));
  },
  async parse(input) {
    for (const message of check2020(input.data)) {
      problems.push(`${where(input.path)}: ${message}`);
    }
    return input.data;
  },
};

function check2020(schema) {
  const ajv = ajv2020();
  if (!ajv.validateSchema(schema)) {
    return [`not a valid JSON Schema draft 2020-12: ${ajvErrors(ajv.errors)}`];
  }
  try {
    ajv.compile(schema);
  } catch (e) {
    return [`does not compile as JSON Schema draft 2020-12: ${e.message}`];
  }
  return [];
}

/**
 * The schema of a Schema model: in AsyncAPI 3 a payload in another format is
 * a Multi Format Schema Object, `{schemaFormat, schema}`.
 */
function schemaOf(schemaModel) {
  const json = schemaModel.json();
  const multiFormat = json !== null && typeof json === 'object' && 'schemaFormat' in json && 'schema' in json;
  return multiFormat ? json.schema : json;
}

/** A validator for the schema of `schemaModel`, or undefined (and a problem) if it does not compile. */
function compile(schemaModel, format, at) {
  const schema = schemaOf(schemaModel);
  const ajv = format === JSON_SCHEMA_2020 ? ajv2020() : ajvAsyncApiSchema();
  try {
    return ajv.compile(schema);
  } catch (e) {
    problems.push(`${at}: the schema does not compile: ${e.message}`);
    return undefined;
  }
}

const parser = new Parser({ schemaParsers: [jsonSchema2020Parser] });
const { document, diagnostics } = await fromFile(parser, documentPath).parse();

const severities = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning' };
for (const d of diagnostics) {
  const severity = severities[d.severity];
  if (severity === undefined) continue; // information and hints
  const line = d.range?.start ? `:${d.range.start.line + 1}` : '';
  const text = `${severity} ${d.code}: ${d.message} (${where(d.path)}${line})`;
  if (d.severity === DiagnosticSeverity.Error) problems.push(text);
  else console.error(text);
}

if (document === undefined) {
  problems.push(`${documentPath}: the parser returned no document`);
  finish();
}

function messageSummary(message, channelId) {
  const schemaFormat = message.schemaFormat();
  const payload = message.hasPayload() ? message.payload() : undefined;
  const headers = message.hasHeaders() ? message.headers() : undefined;
  const payloadSchema = payload ? schemaOf(payload) : undefined;
  const at = `channels.${channelId}.messages.${message.id()}`;
  const validatePayload = payload ? compile(payload, schemaFormat, `${at}.payload`) : undefined;
  const validateHeaders = headers ? compile(headers, undefined, `${at}.headers`) : undefined;
  const examples = message.examples().all().map((example, i) => {
    const name = example.name() ?? String(i);
    if (validatePayload && example.hasPayload() && !validatePayload(example.payload())) {
      problems.push(`${at}.examples.${name}: the payload does not fit its schema: ${ajvErrors(validatePayload.errors)}`);
    }
    if (validateHeaders && example.hasHeaders() && !validateHeaders(example.headers())) {
      problems.push(`${at}.examples.${name}: the headers do not fit their schema: ${ajvErrors(validateHeaders.errors)}`);
    }
    if (validateHeaders && !example.hasHeaders() && !validateHeaders({})) {
      problems.push(`${at}.examples.${name}: no headers, but the headers schema requires some: ${ajvErrors(validateHeaders.errors)}`);
    }
    return { name, headers: example.headers() ?? null, payload: example.payload() ?? null };
  });
  if (examples.length === 0) {
    problems.push(`${at}: no example`);
  }
  return {
    id: message.id(),
    name: message.name() ?? null,
    title: message.title() ?? null,
    contentType: message.contentType() ?? null,
    schemaFormat,
    payloadSchemaId: typeof payloadSchema === 'object' && payloadSchema !== null ? (payloadSchema.$id ?? null) : null,
    headers: headers ? schemaOf(headers) : null,
    examples,
  };
}

const summary = { asyncapi: document.version(), servers: {}, channels: {}, operations: {} };

for (const server of document.servers().all()) {
  summary.servers[server.id()] = {
    host: server.host(),
    protocol: server.protocol(),
    protocolVersion: server.protocolVersion() ?? null,
  };
}

for (const channel of document.channels().all()) {
  const amqp = channel.bindings().get('amqp')?.value() ?? null;
  const parameters = {};
  for (const parameter of channel.parameters().all()) {
    parameters[parameter.id()] = { enum: parameter.json().enum ?? null };
  }
  summary.channels[channel.id()] = {
    address: channel.address() ?? null,
    amqp,
    parameters,
    messages: channel.messages().all().map((m) => messageSummary(m, channel.id())),
  };
}

for (const operation of document.operations().all()) {
  const channels = operation.channels().all().map((c) => c.id());
  summary.operations[operation.id()] = {
    action: operation.action(),
    channel: channels.length === 1 ? channels[0] : channels,
    messages: operation.messages().all().map((m) => m.id()),
    amqp: operation.bindings().get('amqp')?.value() ?? null,
  };
}

finish(summary);

function finish(result) {
  if (problems.length > 0) {
    console.error(`${documentPath}: ${problems.length} problem(s)`);
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify(result, null, 1)}\n`);
  process.exit(0);
}
