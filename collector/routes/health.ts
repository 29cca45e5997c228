/** GET /healthz: the process is up and the database answers. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ping } from '../db/health.ts';
import type { Db } from '../db/open.ts';

const Health = Type.Object({ status: Type.Literal('ok'), database: Type.Literal('ok') });

export const healthRoutes: FastifyPluginAsyncTypebox<{ db: Db }> = async (app, opts) => {
  app.get('/healthz', { schema: { response: { 200: Health } } }, async () => {
    await ping(opts.db);
    return { status: 'ok' as const, database: 'ok' as const };
  });
};
