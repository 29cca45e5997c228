/**
 * The OpenAPI 3.1 document (@fastify/swagger, built from every route's schemas) at
 * /docs/json and the interactive docs (@fastify/swagger-ui) at /docs. Register it
 * before the routes it should describe: it collects them as they are added.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export const openapiPlugin = fp(
  async (app: FastifyInstance) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'silentdrop collector',
          version: '1',
          description:
            'Research API (/api/v1): outcomes per canary and recipient, aggregations, findings, bulk export and ' +
            'probe health. Public and read-only; rate limited per client (x-ratelimit-remaining). Errors are ' +
            '{ statusCode, code: SD_ERR_*, message }. A canary is sealed until its deadline has passed and none ' +
            'of its outcomes is pending: no text, received text or term set of it is returned (null) and no ' +
            'term-set filter or grouping matches it. Every query runs under a statement timeout (503 ' +
            'SD_ERR_QUERY_TIMEOUT, retry-after); a few exports stream at once (503 SD_ERR_BUSY, retry-after).',
        },
        tags: [
          { name: 'outcomes', description: 'per canary and expected recipient' },
          { name: 'aggregation', description: 'counts, rates and intervals' },
          { name: 'findings', description: 'statistical verdicts with evidence' },
          { name: 'probes', description: 'probe health' },
        ],
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  },
  { name: 'silentdrop-openapi' },
);
