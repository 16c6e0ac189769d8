Ð
"serve*Ä
serving_default°
K
flatten_input:
serving_default_flatten_input:0ÿÿÿÿÿÿÿÿÿ