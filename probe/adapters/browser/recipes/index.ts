/** Recipes by name: the adapter setting `recipe: <name>` picks one. */
import { AdapterError } from '../../types.ts';
import { testbed } from './testbed.ts';
import type { Recipe } from './types.ts';

export const RECIPES: Readonly<Record<string, Recipe>> = { testbed };

export function getRecipe(name: string): Recipe {
  const recipe = RECIPES[name];
  if (!recipe) {
    throw new AdapterError(
      'adapter_error',
      `unknown browser recipe "${name}"; known: ${Object.keys(RECIPES).join(', ')}`,
    );
  }
  return recipe;
}
