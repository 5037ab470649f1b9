// GET /v1/openapi.json: OpenAPI 3.1 generated from the same zod schemas that validate requests
// (RouteDef.params / .query, z.toJSONSchema with io "input") and from the response schemas
// (io "output"). The tus endpoints are not fastify routes; they are described here by hand, with
// the Upload-Metadata keys taken from uploadMetadataSchema.
import { z } from 'zod';
import { ERROR_STATUS } from './errors.ts';
import { errorSchema, type RouteDef } from './schemas.ts';
import { uploadMetadataSchema } from './tus.ts';

type Json = Record<string, unknown>;

/** zod -> JSON Schema 2020-12 (OpenAPI 3.1's dialect), without the `$schema` key. */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'output'): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' }) as Json;
  return rest;
}

/** `/v1/videos/:videoId` -> `/v1/videos/{videoId}` */
export const openApiPath = (fastifyPath: string) => fastifyPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

const errorRef = { $ref: '#/components/schemas/Error' };
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: errorRef } } });

function parametersOf(def: RouteDef): Json[] {
  const out: Json[] = [];
  for (const [where, schema] of [['path', def.params], ['query', def.query]] as const) {
    if (!schema) continue;
    const js = jsonSchemaOf(schema, 'input') as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, s] of Object.entries(js.properties ?? {})) {
      out.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema: s });
    }
  }
  return out;
}

function operationOf(def: RouteDef): Json {
  const responses: Json = {};
  for (const [status, r] of Object.entries(def.responses)) {
    if (r.schema) responses[status] = { description: r.description, content: { 'application/json': { schema: jsonSchemaOf(r.schema) } } };
    else if (Number(status) >= 400) responses[status] = errorResponse(r.description);
    else responses[status] = { description: r.description };
  }
  if (def.params || def.query) responses['400'] ??= errorResponse('INVALID_ID / VALIDATION_FAILED: the request does not match the schema');
  if (def.auth !== 'none') responses['401'] ??= errorResponse('UNAUTHORIZED: missing, unknown or revoked API key');
  responses.default = errorResponse('any other error');
  return {
    operationId: `${def.method.toLowerCase()}${openApiPath(def.path).replace(/[{}]/g, '').replace(/(^|[/._-])([a-z0-9])/gi, (_m, _s, c: string) => c.toUpperCase())}`,
    summary: def.summary,
    tags: def.tags,
    parameters: parametersOf(def),
    responses,
    ...(def.auth === 'required' ? { security: [{ bearer: [] }] } : def.auth === 'optional' ? { security: [{}, { bearer: [] }] } : {}),
  };
}

function tusPaths(maxUploadBytes: number): Json {
  const tusHeader = { name: 'Tus-Resumable', in: 'header', required: true, schema: { type: 'string', const: '1.0.0' } };
  const idParam = { name: 'uploadId', in: 'path', required: true, schema: { type: 'string', pattern: '^upl_[a-z2-7]{20}$' } };
  const secured = { security: [{ bearer: [] }] };
  const unauthorized = { 401: errorResponse('UNAUTHORIZED'), 403: errorResponse('FORBIDDEN: the upload belongs to another key') };
  const metadata = jsonSchemaOf(uploadMetadataSchema, 'input');
  return {
    '/v1/uploads': {
      options: { operationId: 'tusOptions', summary: 'tus discovery (Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm)', tags: ['uploads'], responses: { 204: { description: 'capabilities' } } },
      post: {
        operationId: 'tusCreate',
        summary: 'tus creation (also creation-with-upload and creation-defer-length)',
        tags: ['uploads'],
        ...secured,
        parameters: [
          tusHeader,
          { name: 'Upload-Length', in: 'header', schema: { type: 'integer', minimum: 1, maximum: maxUploadBytes } },
          { name: 'Upload-Defer-Length', in: 'header', schema: { type: 'string', const: '1' } },
          {
            name: 'Upload-Metadata',
            in: 'header',
            description: 'comma-separated `key base64(value)` pairs; keys and values as in x-vora-upload-metadata',
            schema: { type: 'string' },
          },
        ],
        'x-vora-upload-metadata': metadata,
        responses: {
          201: { description: 'created; Location: /v1/uploads/{uploadId}' },
          400: errorResponse('EMPTY_UPLOAD / INVALID_METADATA'),
          413: errorResponse('UPLOAD_TOO_LARGE'),
          ...unauthorized,
        },
      },
    },
    '/v1/uploads/{uploadId}': {
      head: { operationId: 'tusHead', summary: 'tus offset (resume point)', tags: ['uploads'], parameters: [tusHeader, idParam], responses: { 200: { description: 'Upload-Offset, Upload-Length' }, 404: { description: 'unknown' }, 410: { description: 'expired' } } },
      patch: {
        operationId: 'tusPatch',
        summary: 'tus append (checksum extension: Upload-Checksum sha1|sha256); the last one finishes the upload (Vora-Video-Id)',
        tags: ['uploads'],
        ...secured,
        parameters: [
          tusHeader,
          idParam,
          { name: 'Upload-Offset', in: 'header', required: true, schema: { type: 'integer', minimum: 0 } },
          { name: 'Upload-Checksum', in: 'header', schema: { type: 'string' } },
        ],
        requestBody: { required: true, content: { 'application/offset+octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
        responses: {
          204: { description: 'appended; Upload-Offset is the new offset' },
          409: errorResponse('OFFSET_MISMATCH'),
          410: errorResponse('UPLOAD_GONE'),
          460: errorResponse('CHECKSUM_MISMATCH'),
          ...unauthorized,
        },
      },
      delete: { operationId: 'tusTerminate', summary: 'tus termination (unfinished uploads only)', tags: ['uploads'], ...secured, parameters: [tusHeader, idParam], responses: { 204: { description: 'terminated' }, ...unauthorized } },
    },
  };
}

/** Routes registered beside the REST table (the web app's), described by hand. */
const OTHER_ROUTES: Record<string, Json> = {
  'GET /v1/config': {
    operationId: 'getWebConfig',
    summary: 'URLs the web app needs (src/api/web.ts)',
    tags: ['web'],
    responses: {
      200: {
        description: 'web app configuration',
        content: {
          'application/json': {
            schema: {
              type: 'object',
              properties: { playbackUrl: { type: 'string' }, gatewayWsUrl: { type: 'string' }, temporalUiUrl: { type: 'string' } },
            },
          },
        },
      },
    },
  },
};

/** Whether a registered (method, url) belongs in the API document: the API's namespace only. */
export const isDocumentedPath = (url: string) => url.startsWith('/v1/') || url === '/healthz';

export function buildOpenApi(
  defs: RouteDef[],
  opts: { maxUploadBytes: number; serverUrl?: string; registered?: { method: string; url: string }[] },
): Json {
  const paths: Record<string, Json> = tusPaths(opts.maxUploadBytes) as Record<string, Json>;
  for (const def of defs) {
    const p = openApiPath(def.path);
    paths[p] = { ...(paths[p] ?? {}), [def.method.toLowerCase()]: operationOf(def) };
  }
  // Anything else registered under /v1/ (e.g. the web app's config) is listed too.
  const gets = new Set((opts.registered ?? []).filter((r) => r.method === 'GET').map((r) => r.url));
  for (const r of opts.registered ?? []) {
    if (!isDocumentedPath(r.url) || (r.method === 'HEAD' && gets.has(r.url))) continue;
    const p = openApiPath(r.url);
    const m = r.method.toLowerCase();
    if ((paths[p] as Json | undefined)?.[m]) continue;
    paths[p] = {
      ...(paths[p] ?? {}),
      [m]: OTHER_ROUTES[`${r.method} ${r.url}`] ?? { summary: 'served beside the API (not described)', responses: { default: { description: 'see the source' } } },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Vora API',
      version: '1.0.0',
      description:
        'Uploads (tus 1.0.0) and video metadata. Writes need `Authorization: Bearer <api key>`; reads are public except private videos. ' +
        `Errors are {"error": {"code", "message"}}; codes: ${Object.keys(ERROR_STATUS).join(', ')}.`,
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    ...(opts.serverUrl ? { servers: [{ url: opts.serverUrl }] } : {}),
    paths,
    components: {
      schemas: { Error: jsonSchemaOf(errorSchema) },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API key (`vora_…`)' } },
    },
  };
}
